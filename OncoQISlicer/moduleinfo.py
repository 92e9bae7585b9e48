"""What the four modules show in Slicer's module list and help panel, in one place.

Imported by each module's constructor at Slicer's startup, so it imports nothing but ``slicer``
(no core, no third-party package).
"""

from __future__ import annotations

import os

#: Who made the modules, in the Extensions Index's "Name (Organisation)" form.
CONTRIBUTORS = ["OncoQI founding engineers (OncoQI open-source project)"]
#: The module pages in the repository's ``Docs/`` folder.
DOCS_URL = "https://github.com/OncoQI/SlicerOncoQI/blob/main/Docs/"
#: The oldest Slicer the bundle runs on (the core needs Python 3.10; Slicer 5.8 embeds 3.9).
MINIMUM_SLICER = "5.10"


def help_footer(page: str) -> str:
    """The help text's last paragraph: the module's page in ``Docs/`` and the Slicer it needs."""
    from slicer.i18n import tr as _

    link = f'<a href="{DOCS_URL}{page}">' + _("documentation") + "</a>"
    return (
        "<p>"
        + _("See the {link}. Needs 3D Slicer {version} or later.").format(link=link, version=MINIMUM_SLICER)
        + "</p>"
    )


def connect_sample_data(module_file: str) -> None:
    """Register the embedded sample with Sample Data once Slicer has started (the template's way),
    with the module's icon as its thumbnail; the first of the four modules registers it."""
    import slicer

    name = os.path.splitext(os.path.basename(module_file))[0]
    thumbnail = os.path.join(os.path.dirname(os.path.abspath(module_file)), "Resources", "Icons", f"{name}.png")

    def register() -> None:
        from OncoQISlicer.sampledata import register_sample_data

        register_sample_data(thumbnail)

    slicer.app.connect("startupCompleted()", register)
