"""Several trained tumour networks as one ONNX model that averages their probabilities.

Why: networks trained from different seeds or phantom sets agree on true tumours but each has
false lesions of its own (a fat wedge here, a band along the pleura there). The mean of their
probabilities keeps what they agree on and halves what only one of them sees, which is why
segmentation challenges are won by ensembles (nnU-Net averages five folds). Built as one ONNX
graph (the shared input fed to every member, an ONNX ``Mean`` of their outputs), an ensemble is
used, tuned (``oncoqi lung tune``) and shipped exactly as a single network: nothing downstream
knows the difference, and it costs one network's time per member.

The members must have been trained on the same grid and coding (``oncoqi.preprocess``); the
ensemble carries that, the least common multiple of their divisors, and in ``oncoqi.ensemble``
the members' file names, SHA-256 and training notes. The post-processing settings of the members
are not carried over: the averaged probability is a new model, so tune it again.

With ``mirror`` (``--mirror``) every member also sees the slice mirrored left to right, and its
output is mirrored back before the mean (test-time augmentation; one network alone is then a valid
ensemble of two passes). Why: the body is nearly symmetric but the mediastinum is not, so a false
lesion on a bulge of the mediastinal outline (the heart border, the aortic arch) has no mirror image
the network knows, while a tumour looks like a tumour either way round. It doubles the network's time.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from oncoqi.lung.onnx_model import ModelError, save_with_metadata
from oncoqi.lung.postprocess import DEFAULT_THRESHOLD
from oncoqi.lung.training.unet import TensorFlowMissingError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import onnx

#: Metadata keys copied from the first member (the others must agree on ``oncoqi.preprocess``).
CARRIED_KEYS = ("oncoqi.preprocess", "oncoqi.unet")
#: The image axis that runs left to right: the network's input and output are (slice, row, column, channel).
COLUMN_AXIS = 2


def ensemble_onnx(members: Sequence[str | os.PathLike], path: str | os.PathLike, *, mirror: bool = False) -> Path:
    """Write one ONNX model whose output is the mean of the members' outputs.

    Parameters
    ----------
    members
        ONNX tumour networks of ours, each with one image input and one output: two or more, or
        one with ``mirror``.
    path
        Destination ``.onnx`` file, written atomically (it must not be one of the members).
    mirror
        Also run every member on the left-right mirrored slice and mirror its output back (see
        the module documentation); one member is then enough.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ModelError
        Fewer than two passes (members, counted twice with ``mirror``), a member that is not a
        loadable one-input one-output model, or members trained on different preprocessing
        (``oncoqi.preprocess``) or channels.
    TensorFlowMissingError
        When the ``onnx`` package (``train`` extra) is not installed.
    """
    try:
        import onnx
    except ImportError as exc:
        raise TensorFlowMissingError(f"building an ensemble needs onnx ({exc}): pip install 'oncoqi[train]'") from exc
    paths = [Path(m) for m in members]
    if passes(len(paths), mirror) < 2:
        raise ModelError(f"an ensemble needs at least two models, or one with mirror, got {len(paths)}")
    if Path(path).resolve() in {p.resolve() for p in paths}:
        raise ModelError(f"{path}: the ensemble would overwrite one of its members; write it elsewhere")
    loaded = [read_model(p) for p in paths]
    protos = [proto for proto, _ in loaded]
    metas = [{p.key: p.value for p in proto.metadata_props} for proto in protos]
    _check_members(paths, protos, metas)
    ensemble = _mean_model(protos, mirror)
    onnx.checker.check_model(ensemble)
    metadata = _ensemble_metadata(paths, metas, [sha256 for _, sha256 in loaded], mirror)
    return save_with_metadata(ensemble, path, metadata)


def _check_members(paths: list[Path], protos: list[onnx.ModelProto], metas: list[dict[str, str]]) -> None:
    """Refuse members whose probabilities cannot be averaged: another grid, coding or number of channels."""
    for p, meta, proto in zip(paths[1:], metas[1:], protos[1:]):
        if _preprocess(meta) != _preprocess(metas[0]):
            raise ModelError(
                f"{p}: oncoqi.preprocess differs from {paths[0].name}'s; members must share grid and coding"
            )
        if _channels(proto) != _channels(protos[0]):
            raise ModelError(f"{p}: {_channels(proto)} input channels, {paths[0].name} has {_channels(protos[0])}")


def _mean_model(protos: list[onnx.ModelProto], mirror: bool) -> onnx.ModelProto:
    """One model that feeds the shared input to every member (and its mirrored pass) and outputs their ``Mean``."""
    from onnx import compose, helper

    shared_input = protos[0].graph.input[0]
    output = protos[0].graph.output[0]
    nodes, initializers, outputs = [], _mirror_constants() if mirror else [], []
    for n, proto in enumerate(protos):
        prefix = f"member{n}/"
        graph = compose.add_prefix(proto, prefix).graph
        nodes.append(helper.make_node("Identity", [shared_input.name], [graph.input[0].name], name=prefix + "feed"))
        nodes.extend(graph.node)
        initializers.extend(graph.initializer)
        outputs.append(graph.output[0].name)
        if mirror:
            nodes.extend(_mirrored_pass(proto, prefix, shared_input.name))
            outputs.append(nodes[-1].output[0])
    nodes.append(helper.make_node("Mean", outputs, [output.name], name="ensemble_mean"))
    graph = helper.make_graph(nodes, "oncoqi_lung_ensemble", [shared_input], [output], initializers)
    opsets = {}
    for proto in protos:
        for entry in proto.opset_import:
            opsets[entry.domain] = max(opsets.get(entry.domain, 0), entry.version)
    ensemble = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(domain, version) for domain, version in opsets.items()],
        producer_name="oncoqi lung ensemble",
    )
    ensemble.ir_version = max(proto.ir_version for proto in protos)
    return ensemble


def _ensemble_metadata(
    paths: list[Path], metas: list[dict[str, str]], sha256s: list[str], mirror: bool
) -> dict[str, str]:
    """The first member's grid and coding, the default threshold, and what the ensemble is made of (re-tune it)."""
    metadata = {key: metas[0][key] for key in CARRIED_KEYS if key in metas[0]}
    metadata["oncoqi.threshold"] = repr(DEFAULT_THRESHOLD)
    metadata["oncoqi.divisor"] = str(math.lcm(*(int(meta.get("oncoqi.divisor", 1)) for meta in metas)))
    metadata["oncoqi.ensemble"] = json.dumps(
        [
            {"file": p.name, "sha256": sha256, "training": meta.get("oncoqi.training", ""), "mirror": mirror}
            for p, meta, sha256 in zip(paths, metas, sha256s)
        ]
    )
    what = f"{len(paths)} networks" if len(paths) > 1 else "1 network"
    if mirror:
        what += " and their mirror images" if len(paths) > 1 else " and its mirror image"
    named = (
        f"{p.name} ({meta['oncoqi.training']})" if meta.get("oncoqi.training") else p.name
        for p, meta in zip(paths, metas)
    )
    metadata["oncoqi.training"] = f"mean of {what}: " + ", ".join(named)
    return metadata


def passes(members: int, mirror: bool) -> int:
    """How many network passes an ensemble of ``members`` networks averages."""
    return members * (2 if mirror else 1)


def _mirrored_pass(proto: onnx.ModelProto, prefix: str, source: str) -> list[onnx.NodeProto]:
    """The member's nodes run on the mirrored ``source`` with the output mirrored back.

    They read the weights of the member's plain pass (named ``prefix`` + name), so the mirrored pass
    adds no copy of them to the file or to memory. The last node's output is the pass's result.
    """
    from onnx import compose

    mirrored = prefix + "mirrored/"
    graph = compose.add_prefix(proto, mirrored).graph
    weights = {init.name for init in proto.graph.initializer}
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name.startswith(mirrored) and name[len(mirrored) :] in weights:
                node.input[i] = prefix + name[len(mirrored) :]
    return [
        _mirror_node(source, graph.input[0].name, mirrored + "feed"),
        *graph.node,
        _mirror_node(graph.output[0].name, mirrored + "unmirrored", mirrored + "unmirror"),
    ]


def _mirror_constants() -> list[onnx.TensorProto]:
    """The Slice arguments that reverse the column axis (start at the last column, step -1)."""
    from onnx import TensorProto, helper

    values = {"start": -1, "end": -(2**63), "axis": COLUMN_AXIS, "step": -1}
    return [helper.make_tensor(f"mirror/{k}", TensorProto.INT64, [1], [v]) for k, v in values.items()]


def _mirror_node(source: str, target: str, name: str) -> onnx.NodeProto:
    from onnx import helper

    return helper.make_node(
        "Slice", [source, "mirror/start", "mirror/end", "mirror/axis", "mirror/step"], [target], name=name
    )


def read_model(path: Path) -> tuple[onnx.ModelProto, str]:
    """The ONNX model in ``path`` and the SHA-256 of the file, from one read (ensemble members, fine-tuning starts)."""
    import onnx

    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    data = path.read_bytes()
    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:  # onnx raises protobuf's untyped errors for a bad file
        raise ModelError(f"{path}: not a loadable ONNX model ({exc})") from exc
    if len(proto.graph.input) != 1 or len(proto.graph.output) != 1:
        raise ModelError(
            f"{path}: expected one image input and one output, found "
            f"{len(proto.graph.input)} inputs and {len(proto.graph.output)} outputs"
        )
    return proto, hashlib.sha256(data).hexdigest()


def _preprocess(meta: dict[str, str]) -> dict:
    return json.loads(meta.get("oncoqi.preprocess", "{}"))


def _channels(proto: onnx.ModelProto) -> int | str:
    dim = proto.graph.input[0].type.tensor_type.shape.dim[-1]
    return dim.dim_value or dim.dim_param
