"""Triton fused layer norm: x read once, out written once.

Rows up to MAX_FUSED_COLS wide are held in registers: each program normalises a [BLOCK_M,
BLOCK_N] tile (BLOCK_N = next_power_of_2(hidden); BLOCK_M > 1 only for short rows, so a program
still moves a few thousand elements), with a two-pass mean/variance on the registers. Wider rows
use the Triton tutorial's design: one program per row streaming it in BLOCK_N chunks, once for the
mean, once for the centred variance, once to write (the re-reads hit L2). Statistics are
accumulated in float32 (float64 for float64 inputs) and the output rounded once on store.

Training: the same kernels also store each row's mean and rstd (STATS; float32 for float32 and
narrower inputs: 8 bytes a row), saved with x and weight. Backward is the Triton layer-norm
tutorial's design without its locks: a grid of programs (one per SM on a GPU) strides over row
tiles, writes dx, and keeps its rows' sums of g xhat and g in registers, stored once into a
[programs, hidden] float32 buffer; a second small kernel sums those partial rows over the
programs in a fixed order (deterministic, no atomics) into dweight and dbias. Rows too wide for
registers take two kernels: one streams each row for its two reductions (mean of dxhat and of
dxhat xhat), the other, over (programs x column chunks), writes dx and the partial sums.
"""

import torch
import triton
import triton.language as tl

MAX_FUSED_COLS = 16384  # 64 KiB of float32 per row: beyond this the registers spill
CHUNK_COLS = 4096
TILE_ELEMS = 2048  # short rows are batched until a program holds about this many elements
SUM_ROWS, SUM_COLS = 16, 128  # backward: the tile of the partial-sum reduction


@triton.jit
def _layer_norm_tile(x_ptr, w_ptr, b_ptr, out_ptr, mean_ptr, rstd_ptr, rows, cols, x_stride,
                     out_stride, eps, ACC: tl.constexpr, BLOCK_M: tl.constexpr,
                     BLOCK_N: tl.constexpr, STATS: tl.constexpr):
    r = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    c = tl.arange(0, BLOCK_N)
    cmask = c < cols
    mask = (r < rows)[:, None] & cmask[None, :]
    x = tl.load(x_ptr + r[:, None].to(tl.int64) * x_stride + c[None, :], mask=mask,
                other=0.0).to(ACC)
    mean = tl.sum(x, axis=1) / cols
    xc = tl.where(mask, x - mean[:, None], 0.0)
    var = tl.sum(xc * xc, axis=1) / cols
    rstd = 1.0 / tl.sqrt(var + eps)
    w = tl.load(w_ptr + c, mask=cmask, other=0.0).to(ACC)
    b = tl.load(b_ptr + c, mask=cmask, other=0.0).to(ACC)
    y = xc * rstd[:, None] * w[None, :] + b[None, :]
    tl.store(out_ptr + r[:, None].to(tl.int64) * out_stride + c[None, :],
             y.to(out_ptr.dtype.element_ty), mask=mask)
    if STATS:
        tl.store(mean_ptr + r, mean, mask=r < rows)
        tl.store(rstd_ptr + r, rstd, mask=r < rows)


@triton.jit
def _layer_norm_chunked(x_ptr, w_ptr, b_ptr, out_ptr, mean_ptr, rstd_ptr, cols, x_stride,
                        out_stride, eps, ACC: tl.constexpr, BLOCK_N: tl.constexpr,
                        STATS: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * x_stride
    out_row = out_ptr + row * out_stride
    offs = tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_N,), ACC)
    for start in range(0, cols, BLOCK_N):
        acc += tl.load(x_row + start + offs, mask=start + offs < cols, other=0.0).to(ACC)
    mean = tl.sum(acc, axis=0) / cols
    acc = tl.zeros((BLOCK_N,), ACC)
    for start in range(0, cols, BLOCK_N):
        mask = start + offs < cols
        x = tl.load(x_row + start + offs, mask=mask, other=0.0).to(ACC)
        xc = tl.where(mask, x - mean, 0.0)
        acc += xc * xc
    rstd = 1.0 / tl.sqrt(tl.sum(acc, axis=0) / cols + eps)
    for start in range(0, cols, BLOCK_N):
        mask = start + offs < cols
        x = tl.load(x_row + start + offs, mask=mask, other=0.0).to(ACC)
        w = tl.load(w_ptr + start + offs, mask=mask, other=0.0).to(ACC)
        b = tl.load(b_ptr + start + offs, mask=mask, other=0.0).to(ACC)
        tl.store(out_row + start + offs, ((x - mean) * rstd * w + b).to(out_ptr.dtype.element_ty),
                 mask=mask)
    if STATS:
        tl.store(mean_ptr + row, mean)
        tl.store(rstd_ptr + row, rstd)


def acc_type(dtype: torch.dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


def warps_for(elems: int) -> int:
    """About 8-16 elements per thread (32 threads a warp), between 1 and 16 warps."""
    return max(1, min(16, triton.next_power_of_2(elems) // 512))


def _forward(x, weight, bias, eps, stats):
    """The output and, with `stats`, each row's mean and rstd (else None)."""
    rows, cols = x.shape
    x = x.contiguous() if x.stride(-1) != 1 else x
    out = torch.empty_like(x)
    acc = acc_type(x.dtype)
    mean = rstd = out  # unused pointers when not training
    if stats:
        mean = torch.empty(rows, device=x.device, dtype=acc_torch(x.dtype))
        rstd = torch.empty_like(mean)
    block_n = triton.next_power_of_2(cols)
    if block_n <= MAX_FUSED_COLS:
        block_m = min(triton.next_power_of_2(rows), max(1, TILE_ELEMS // block_n))
        _layer_norm_tile[(triton.cdiv(rows, block_m),)](
            x, weight, bias, out, mean, rstd, rows, cols, x.stride(0), out.stride(0), eps,
            ACC=acc, BLOCK_M=block_m, BLOCK_N=block_n, STATS=stats,
            num_warps=warps_for(block_m * block_n))
    else:
        _layer_norm_chunked[(rows,)](x, weight, bias, out, mean, rstd, cols, x.stride(0),
                                     out.stride(0), eps, ACC=acc, BLOCK_N=CHUNK_COLS,
                                     STATS=stats, num_warps=8)
    return (out, mean, rstd) if stats else (out, None, None)


def forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    return _forward(x, weight, bias, eps, stats=False)[0]


# -- training --------------------------------------------------------------------------------
@triton.jit
def _layer_norm_bwd_tile(x_ptr, w_ptr, mean_ptr, rstd_ptr, g_ptr, dx_ptr, dw_ptr, db_ptr, rows,
                         cols, x_stride, g_stride, dx_stride, n_tiles, ACC: tl.constexpr,
                         BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """Row tiles pid, pid + P, ...: dx written; sum_rows(g xhat) and sum_rows(g) kept in
    registers and stored once, as this program's row of the partial-sum buffers."""
    pid = tl.program_id(0)
    c = tl.arange(0, BLOCK_N)
    cmask = c < cols
    w = tl.load(w_ptr + c, mask=cmask, other=0.0).to(ACC)
    dw = tl.zeros((BLOCK_N,), ACC)
    db = tl.zeros((BLOCK_N,), ACC)
    for tile in range(pid, n_tiles, tl.num_programs(0)):
        r = tile * BLOCK_M + tl.arange(0, BLOCK_M)
        rmask = r < rows
        mask = rmask[:, None] & cmask[None, :]
        r64 = r[:, None].to(tl.int64)
        x = tl.load(x_ptr + r64 * x_stride + c[None, :], mask=mask, other=0.0).to(ACC)
        g = tl.load(g_ptr + r64 * g_stride + c[None, :], mask=mask, other=0.0).to(ACC)
        mean = tl.load(mean_ptr + r, mask=rmask, other=0.0).to(ACC)
        rstd = tl.load(rstd_ptr + r, mask=rmask, other=0.0).to(ACC)
        xhat = tl.where(mask, (x - mean[:, None]) * rstd[:, None], 0.0)
        dxhat = g * w[None, :]
        c1 = tl.sum(dxhat, axis=1) / cols
        c2 = tl.sum(dxhat * xhat, axis=1) / cols
        dx = (dxhat - c1[:, None] - xhat * c2[:, None]) * rstd[:, None]
        tl.store(dx_ptr + r64 * dx_stride + c[None, :], dx.to(dx_ptr.dtype.element_ty),
                 mask=mask)
        dw += tl.sum(g * xhat, axis=0)
        db += tl.sum(g, axis=0)
    tl.store(dw_ptr + pid * cols + c, dw, mask=cmask)
    tl.store(db_ptr + pid * cols + c, db, mask=cmask)


@triton.jit
def _layer_norm_bwd_row_sums(x_ptr, w_ptr, mean_ptr, rstd_ptr, g_ptr, c1_ptr, c2_ptr, cols,
                             x_stride, g_stride, ACC: tl.constexpr, BLOCK_N: tl.constexpr):
    """Wide rows, one program per row: mean(dxhat) and mean(dxhat xhat) over the row."""
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK_N)
    mean = tl.load(mean_ptr + row).to(ACC)
    rstd = tl.load(rstd_ptr + row).to(ACC)
    s1 = tl.zeros((BLOCK_N,), ACC)
    s2 = tl.zeros((BLOCK_N,), ACC)
    for start in range(0, cols, BLOCK_N):
        mask = start + offs < cols
        x = tl.load(x_ptr + row * x_stride + start + offs, mask=mask, other=0.0).to(ACC)
        g = tl.load(g_ptr + row * g_stride + start + offs, mask=mask, other=0.0).to(ACC)
        w = tl.load(w_ptr + start + offs, mask=mask, other=0.0).to(ACC)
        xhat = tl.where(mask, (x - mean) * rstd, 0.0)
        s1 += g * w
        s2 += g * w * xhat
    tl.store(c1_ptr + row, tl.sum(s1, axis=0) / cols)
    tl.store(c2_ptr + row, tl.sum(s2, axis=0) / cols)


@triton.jit
def _layer_norm_bwd_chunk(x_ptr, w_ptr, mean_ptr, rstd_ptr, g_ptr, c1_ptr, c2_ptr, dx_ptr,
                          dw_ptr, db_ptr, rows, cols, x_stride, g_stride, dx_stride,
                          ACC: tl.constexpr, BLOCK_N: tl.constexpr):
    """Wide rows: program (pid, chunk) writes dx on its chunk of rows pid, pid + P, ... and
    stores its partial sums of g xhat and g for that chunk."""
    pid = tl.program_id(0)
    c = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    cmask = c < cols
    w = tl.load(w_ptr + c, mask=cmask, other=0.0).to(ACC)
    dw = tl.zeros((BLOCK_N,), ACC)
    db = tl.zeros((BLOCK_N,), ACC)
    step = tl.num_programs(0)
    # row pointers advanced in 64 bits (rows x cols may pass 2**31)
    x_row = x_ptr + pid.to(tl.int64) * x_stride
    g_row = g_ptr + pid.to(tl.int64) * g_stride
    dx_row = dx_ptr + pid.to(tl.int64) * dx_stride
    for row in range(pid, rows, step):
        x = tl.load(x_row + c, mask=cmask, other=0.0).to(ACC)
        g = tl.load(g_row + c, mask=cmask, other=0.0).to(ACC)
        mean = tl.load(mean_ptr + row).to(ACC)
        rstd = tl.load(rstd_ptr + row).to(ACC)
        xhat = tl.where(cmask, (x - mean) * rstd, 0.0)
        dx = (g * w - tl.load(c1_ptr + row) - xhat * tl.load(c2_ptr + row)) * rstd
        tl.store(dx_row + c, dx.to(dx_ptr.dtype.element_ty), mask=cmask)
        dw += g * xhat
        db += g
        x_row += step.to(tl.int64) * x_stride
        g_row += step.to(tl.int64) * g_stride
        dx_row += step.to(tl.int64) * dx_stride
    tl.store(dw_ptr + pid * cols + c, dw, mask=cmask)
    tl.store(db_ptr + pid * cols + c, db, mask=cmask)


@triton.jit
def _sum_partials(part_ptr, out_ptr, n_parts, cols, ACC: tl.constexpr, BLOCK_P: tl.constexpr,
                  BLOCK_N: tl.constexpr):
    """out[c] = sum_p part[p, c], the partial rows added in a fixed order, rounded once."""
    c = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    cmask = c < cols
    p = tl.arange(0, BLOCK_P)
    acc = tl.zeros((BLOCK_P, BLOCK_N), ACC)
    for start in range(0, n_parts, BLOCK_P):
        mask = ((start + p) < n_parts)[:, None] & cmask[None, :]
        acc += tl.load(part_ptr + (start + p)[:, None] * cols + c[None, :], mask=mask, other=0.0)
    tl.store(out_ptr + c, tl.sum(acc, axis=0).to(out_ptr.dtype.element_ty), mask=cmask)


def acc_torch(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def programs_for(device: torch.device, work: int) -> int:
    """Programs of the backward grid: one per SM on a GPU (each loops over its share of the row
    tiles), a few under the CPU interpreter; never more than there is work."""
    if device.type == "cuda":
        return max(1, min(work, torch.cuda.get_device_properties(device).multi_processor_count))
    return max(1, min(work, 8))


def reduce_partials(part: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Sum a [programs, hidden] buffer over its rows into a tensor shaped and typed as `like`."""
    out = torch.empty_like(like)
    cols = part.shape[1]
    _sum_partials[(triton.cdiv(cols, SUM_COLS),)](part, out, part.shape[0], cols,
                                                  ACC=acc_type(part.dtype), BLOCK_P=SUM_ROWS,
                                                  BLOCK_N=SUM_COLS, num_warps=4)
    return out


def forward_train(x, weight, bias, eps):
    out, mean, rstd = _forward(x, weight, bias, eps, stats=True)
    return out, (x, weight, mean, rstd)


def backward(saved, g, eps):
    """dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) with dxhat = g weight;
    dweight = sum_rows(g xhat) and dbias = sum_rows(g) through per-program partial sums."""
    x, weight, mean, rstd = saved
    rows, cols = x.shape
    x = x.contiguous() if x.stride(-1) != 1 else x
    g = g.contiguous()
    dx = torch.empty_like(x)
    acc = acc_type(x.dtype)
    block_n = triton.next_power_of_2(cols)
    if block_n <= MAX_FUSED_COLS:
        block_m = min(triton.next_power_of_2(rows), max(1, TILE_ELEMS // block_n))
        n_tiles = triton.cdiv(rows, block_m)
        programs = programs_for(x.device, n_tiles)
        dw = torch.empty((programs, cols), device=x.device, dtype=mean.dtype)
        db = torch.empty_like(dw)
        _layer_norm_bwd_tile[(programs,)](
            x, weight, mean, rstd, g, dx, dw, db, rows, cols, x.stride(0), g.stride(0),
            dx.stride(0), n_tiles, ACC=acc, BLOCK_M=block_m, BLOCK_N=block_n,
            num_warps=warps_for(block_m * block_n))
    else:
        c1 = torch.empty_like(mean)
        c2 = torch.empty_like(mean)
        _layer_norm_bwd_row_sums[(rows,)](x, weight, mean, rstd, g, c1, c2, cols, x.stride(0),
                                          g.stride(0), ACC=acc, BLOCK_N=CHUNK_COLS, num_warps=8)
        programs = programs_for(x.device, rows)
        dw = torch.empty((programs, cols), device=x.device, dtype=mean.dtype)
        db = torch.empty_like(dw)
        _layer_norm_bwd_chunk[(programs, triton.cdiv(cols, CHUNK_COLS))](
            x, weight, mean, rstd, g, c1, c2, dx, dw, db, rows, cols, x.stride(0), g.stride(0),
            dx.stride(0), ACC=acc, BLOCK_N=CHUNK_COLS, num_warps=8)
    return dx, reduce_partials(dw, weight), reduce_partials(db, weight)
