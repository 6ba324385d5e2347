"""Softmax off by 0.1%: runs and is timed, but fails accuracy."""

import torch


def forward(x):
    return torch.softmax(x, dim=-1) * 1.001
