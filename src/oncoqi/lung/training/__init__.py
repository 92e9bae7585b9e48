"""Making the lung tumour model: training, post-processing tuning and ensembles (not needed to run it).

Modules
-------
:mod:`~oncoqi.lung.training.data`
    Training cases (read from folders or generated as phantoms), their slices, the scanner
    randomisation, augmentation and crops.
:mod:`~oncoqi.lung.training.unet`
    The Keras U-Net and its export to ONNX; the only module that imports TensorFlow.
:mod:`~oncoqi.lung.training.train`
    The training loop of ``oncoqi lung train``: loss schedule, learning rate, validation, the
    best model written as ONNX.
:mod:`~oncoqi.lung.training.warm_start`
    A trained ONNX network's weights back into the Keras U-Net, to fine-tune it.
:mod:`~oncoqi.lung.training.tune`
    The post-processing (threshold, minimum size, vessel, dome and lung tests) chosen on held-out
    phantoms and stored in the model's metadata (``oncoqi lung tune``).
:mod:`~oncoqi.lung.training.ensemble`
    Several networks, or one with its mirrored pass, as one ONNX model (``oncoqi lung ensemble``).

Inference (:mod:`oncoqi.lung`) never imports this package. Nothing is imported here, so that
importing one module does not load the others; TensorFlow is imported only when training runs.
"""
