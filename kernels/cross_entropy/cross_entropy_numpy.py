"""NumPy cross-entropy: centred logits (z - max) in one buffer, their row mean taken before the
in-place exp (the label-smoothing term), log of the row sums; per row
log(sum exp(z - m)) + (1 - ls) (m - z_t) + ls (m - mean z), so no large lse is formed and
subtracted. float16 logits are computed in float32; the loss is returned in the logits' dtype.

Training saves the logits, the targets and the per-row log-sum-exp m + log(sum) in the
accumulation type (4 bytes a row in float32); backward recomputes softmax = exp(z - lse)
rather than keeping the [N, V] probabilities."""

import numpy as np


def _cross_entropy(logits, target, label_smoothing):
    """The mean loss (in the logits' dtype) and the per-row max and log-sum of exponentials."""
    acc = np.promote_types(logits.dtype, np.float32)
    z = logits.astype(acc, copy=False)
    rows = np.arange(z.shape[0])
    m = z.max(axis=-1)
    e = z - m[:, None]
    loss = np.subtract(m, z[rows, target])
    loss *= 1.0 - label_smoothing
    if label_smoothing:
        loss -= label_smoothing * e.mean(axis=-1)
    np.exp(e, out=e)
    log_sum = np.log(e.sum(axis=-1))
    loss += log_sum
    return np.asarray(loss.mean(), dtype=logits.dtype), m, log_sum


def forward(logits, target, label_smoothing):
    return _cross_entropy(logits, target, label_smoothing)[0]


def forward_train(logits, target, label_smoothing):
    loss, m, log_sum = _cross_entropy(logits, target, label_smoothing)
    m += log_sum  # lse, in place
    return loss, (logits, target, m)


def backward(saved, g, label_smoothing):
    """d logits = (exp(z - lse) - q) g / N, q = (1 - ls) onehot(target) + ls / V: one buffer."""
    logits, target, lse = saved
    n, vocab = logits.shape
    acc = lse.dtype
    scale = acc.type(np.asarray(g, dtype=acc) / n)
    d = logits.astype(acc, copy=True)
    d -= lse[:, None]
    np.exp(d, out=d)
    if label_smoothing:
        d -= acc.type(label_smoothing / vocab)
    d[np.arange(n), target] -= acc.type(1.0 - label_smoothing)
    d *= scale
    return (d.astype(logits.dtype, copy=False),)
