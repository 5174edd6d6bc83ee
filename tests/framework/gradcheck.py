"""Central finite differences, the reference the framework tests check gradients against."""
import numpy as np


def numeric_grad(f, arr, eps=1e-6):
    """d f() / d arr by central differences, perturbing `arr` in place one element at a time."""
    g = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + eps
        up = f()
        arr[idx] = old - eps
        down = f()
        arr[idx] = old
        g[idx] = (up - down) / (2 * eps)
    return g
