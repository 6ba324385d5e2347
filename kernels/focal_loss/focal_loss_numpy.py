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
