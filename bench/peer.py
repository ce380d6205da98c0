"""How the PyTorch peer is configured, for every report row.

The peer is PyTorch as a user who cares would run it: OpenBLAS as
libblas.so.3 (apt-get install libopenblas0-pthread) and glibc's allocator
thresholds raised, so that the large, short-lived tensors of a training step
are not returned to the kernel and faulted in again on every step.

    import peer
    peer.tune_allocator()   # first thing: re-executes with the thresholds set
    import torch
    ...
    row.update(peer.describe(torch))
"""
import os
import sys

# glibc reads these once, at start-up: 1 GiB, above any tensor of these
# benchmarks, keeps freed blocks in the heap instead of unmapping them.
ALLOCATOR = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}

REFERENCE_WARNING = "**PEER RUNS THE REFERENCE BLAS (netlib): its figures are not a tuned PyTorch's**"


def tune_allocator():
    """Re-executes the script with the allocator thresholds set, unless the
    environment already sets them (then the user's values stand)."""
    if all(k in os.environ for k in ALLOCATOR):
        return
    env = dict(os.environ)
    for k, v in ALLOCATOR.items():
        env.setdefault(k, v)
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def blas_mapped():
    """The BLAS library this process has mapped, read from /proc/self/maps:
    the file that provides the BLAS symbols, whatever libblas.so.3 points at."""
    libs = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 6:
                continue
            path = parts[-1]
            name = os.path.basename(path)
            if any(s in name for s in ("blas", "mkl", "blis")) and path not in libs:
                libs.append(path)
    return libs


def describe(torch):
    """The peer's configuration as report fields. Call it after the first
    matrix product, when the BLAS library is surely loaded."""
    libs = [os.path.realpath(p) for p in blas_mapped()]
    # libtorch links libblas.so.3 ahead of anything else, so its target
    # answers the BLAS calls: netlib's (/usr/lib/x86_64-linux-gnu/blas/)
    # unless an optimised library provides the alternative.
    reference = any(os.path.basename(p).startswith("libblas.so") and
                    not any(s in p for s in ("openblas", "blis", "mkl")) for p in libs)
    row = {"torch": torch.__version__, "threads": torch.get_num_threads(),
           "blas": " ".join(libs) or "none mapped",
           "reference_blas": reference}
    row.update({k: os.environ.get(k, "") for k in ALLOCATOR})
    if reference:
        row["warning"] = REFERENCE_WARNING
    return row
