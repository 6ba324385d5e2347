"""NumPy focal loss in its stable form: z = (1 - 2t) x is the logit of the wrong answer, and with
e = exp(-|z|) the cross-entropy is softplus(z) = max(z, 0) + log1p(e) and 1 - p_t = sigmoid(z)
= (1 or e) / (1 + e); no log of a sigmoid; gamma = 2 squares rather than calling pow. Buffers
are reused with in-place ufuncs; float16 inputs are computed in float32; the mean (pairwise) is
returned in the logits' dtype."""

import numpy as np


def forward(logits, targets, alpha, gamma):
    acc = np.promote_types(logits.dtype, np.float32)
    positive = targets > 0.5
    z = np.negative(logits, dtype=acc, where=positive, out=logits.astype(acc))  # x, or -x
    e = np.abs(z)
    np.negative(e, out=e)
    np.exp(e, out=e)
    p = np.where(z >= 0, acc.type(1.0), e)
    loss = np.log1p(e)
    loss += np.maximum(z, 0.0, out=z)  # softplus(z) = -log(p_t)
    e += 1.0
    p /= e  # sigmoid(z) = 1 - p_t
    if gamma == 2.0:
        np.square(p, out=p)
    else:
        np.power(p, gamma, out=p)
    loss *= p
    np.multiply(loss, alpha, out=loss, where=positive)
    np.multiply(loss, 1.0 - alpha, out=loss, where=~positive)
    return np.asarray(loss.mean(), dtype=logits.dtype)


def forward_train(logits, targets, alpha, gamma):
    """Backward needs nothing beyond the inputs: it recomputes exp(-|z|) from the logits."""
    return forward(logits, targets, alpha, gamma), (logits, targets)


def backward(saved, g, alpha, gamma):
    """d logits = (1 - 2t) alpha_t s^gamma (gamma p_t ce + s) g / count, with s = sigmoid(z) =
    1 - p_t, p_t = sigmoid(-z) and ce = softplus(z), all from e = exp(-|z|) (no cancellation:
    every term is positive)."""
    logits, targets = saved
    acc = np.promote_types(logits.dtype, np.float32)
    scale = float(np.asarray(g, dtype=np.float64)) / logits.size
    positive = targets > 0.5
    z = np.negative(logits, dtype=acc, where=positive, out=logits.astype(acc))  # x, or -x
    right = z < 0  # sigmoid(z) = e / (1 + e) there, and p_t = 1 / (1 + e)
    e = np.abs(z)
    np.negative(e, out=e)
    np.exp(e, out=e)
    d = np.log1p(e)
    d += np.maximum(z, 0.0, out=z)  # ce = softplus(z)
    inv = e + 1.0
    np.reciprocal(inv, out=inv)
    s = np.where(right, e, acc.type(1.0))
    s *= inv  # sigmoid(z) = 1 - p_t
    np.copyto(e, acc.type(1.0), where=right)
    e *= inv  # p_t = sigmoid(-z)
    d *= e
    d *= gamma
    d += s  # gamma p_t ce + s
    if gamma == 2.0:
        np.square(s, out=s)
    else:
        np.power(s, gamma, out=s)
    d *= s
    np.multiply(d, -alpha * scale, out=d, where=positive)
    np.multiply(d, (1.0 - alpha) * scale, out=d, where=~positive)
    return (d.astype(logits.dtype, copy=False),)
