"""How many images to send through the MNIST classifier at once when measuring samples (metrics.EVAL_BATCH): the
classifier's outputs for 5,000 random images, timed for several batch sizes at one and at two PyTorch threads.

    python benchmarks/eval_batch.py           # best of 3 passes per batch size

A batch of 1,000 28x28 images makes 100 MB of first-layer activations, which the max-pooling after it reads back
from memory; smaller batches stay in the caches. Prints seconds per pass and each batch size's speed as a ratio to
batches of 1,000 (the size the package used before) in the same process. The classifier's outputs do not depend on
the batch size (checked here too).
"""

from __future__ import annotations

import time

import torch

from dcgan_utils.engine.device import machine_summary
from dcgan_utils.evaluation.metrics import EVAL_BATCH, shipped_mnist_classifier

classifier = shipped_mnist_classifier()
images = torch.rand(5000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
sizes = sorted({1000, 512, 256, 128, 64, EVAL_BATCH}, reverse=True)
for threads in (1, 2):
    torch.set_num_threads(threads)
    print(machine_summary())
    seconds, outputs = {}, {}
    with torch.no_grad():
        for size in sizes:
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                outputs[size] = torch.cat([classifier(batch) for batch in images.split(size)])
                best = min(best, time.perf_counter() - start)
            seconds[size] = best
    for size in sizes:
        same = torch.allclose(outputs[size], outputs[1000], rtol=1e-5, atol=1e-5)
        print(f"  batch {size:5}: {seconds[size]:.3f} s per 5,000 images, {seconds[1000] / seconds[size]:.2f}x the "
              f"speed of batches of 1,000; outputs {'the same' if same else 'DIFFERENT'}"
              + ("  <- EVAL_BATCH" if size == EVAL_BATCH else ""))
