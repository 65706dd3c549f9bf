"""Colorization as classification (Zhang, Isola & Efros, "Colorful Image Colorization", ECCV 2016).

The pretext task: show the network only the lightness L of an image and ask for the colour ab.
Regressing ab with an L2 loss gives greyish pictures, because the L2 minimiser is the *mean* of
all plausible colours (a car may be red or blue; the mean is a dull purple-grey). The paper
instead quantises the ab plane into Q in-gamut bins (313 in the paper), predicts a distribution
over them (Eq. 2), re-weights rare colours so that the desaturated background does not
dominate (Eq. 3-4), and decodes with an "annealed mean" between the mode and the mean (Eq. 5).

Colour conventions are those of ``skimage.color``: sRGB in [0, 1], CIE Lab with the D65 white
point (2 degree observer). The network input and target follow the PyTorch port
(richzhang/colorization, colorizers/base_color.py): L is fed as (L - 50) / 100, ab stays in Lab
units here (the port divides by 110 only inside the network).
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

# sRGB (linear) -> XYZ, the matrix skimage uses; D65 reference white for the 2 degree observer.
XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
D65_WHITE = (0.95047, 1.0, 1.08883)
_EPSILON = 0.008856  # (6/29)^3: below it, Lab's cube root is replaced by a line
_KAPPA = 7.787  # slope of that line, 1 / (3 (6/29)^2)


def _matrix(rows, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(rows, dtype=like.dtype, device=like.device)


def _apply_matrix(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", m, x)  # (B, 3, H, W)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB -> CIE Lab (D65), batched, differentiable; matches ``skimage.color.rgb2lab``.

    Parameters
    ----------
    rgb : (B, 3, H, W) float tensor
        sRGB values in [0, 1].

    Returns
    -------
    lab : (B, 3, H, W) tensor
        L in [0, 100], a and b roughly in [-110, 110].

    Notes
    -----
    Both piecewise functions (sRGB gamma and Lab's f(t)) use ``torch.where``. The branch that is
    *not* selected is still differentiated, so its input is clamped to where it is finite:
    otherwise a 0 * inf = nan gradient leaks through the mask.
    """
    # Undo the sRGB gamma (IEC 61966-2-1): linear below 0.04045, a 2.4 power above.
    power = ((rgb.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4
    linear = torch.where(rgb > 0.04045, power, rgb / 12.92)
    xyz = _apply_matrix(_matrix(XYZ_FROM_RGB, rgb), linear)  # (B, 3, H, W)
    t = xyz / _matrix(D65_WHITE, rgb).view(1, 3, 1, 1)
    f = torch.where(t > _EPSILON, t.clamp(min=_EPSILON) ** (1 / 3), _KAPPA * t + 16 / 116)
    fx, fy, fz = f.unbind(dim=1)  # each (B, H, W)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=1)


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """CIE Lab (D65) -> sRGB, batched, differentiable; matches ``skimage.color.lab2rgb``.

    Parameters
    ----------
    lab : (B, 3, H, W) float tensor
    clip : bool
        Clip to [0, 1] at the end, as skimage does (its clipping of negative Z is copied too).
        With ``clip=False`` out-of-gamut colours show up as values outside [0, 1], which is what
        :func:`ab_gamut_bins` tests.

    Returns
    -------
    rgb : (B, 3, H, W) tensor
    """
    L, a, b = lab.unbind(dim=1)  # each (B, H, W)
    fy = (L + 16) / 116
    fz = fy - b / 200
    if clip:
        fz = fz.clamp(min=0)  # skimage sets negative Z to zero (with a warning)
    f = torch.stack([a / 500 + fy, fy, fz], dim=1)  # (B, 3, H, W)
    cube = torch.where(f > 0.2068966, f**3, (f - 16 / 116) / _KAPPA)  # 0.2068966 = 6/29
    xyz = cube * _matrix(D65_WHITE, lab).view(1, 3, 1, 1)
    rgb_from_xyz = torch.linalg.inv(_matrix(XYZ_FROM_RGB, lab).double()).to(lab.dtype)
    linear = _apply_matrix(rgb_from_xyz, xyz)
    power = 1.055 * linear.clamp(min=0.0031308) ** (1 / 2.4) - 0.055
    rgb = torch.where(linear > 0.0031308, power, 12.92 * linear)
    return rgb.clamp(0, 1) if clip else rgb


def split_lab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Network input and target of the colorization task.

    rgb : (B, 3, H, W) in [0, 1] -> ``L_input`` (B, 1, H, W) = (L - 50) / 100, roughly in
    [-0.5, 0.5] (the PyTorch port's normalisation), and ``ab`` (B, 2, H, W) in Lab units.
    """
    lab = rgb_to_lab(rgb)
    return (lab[:, :1] - 50) / 100, lab[:, 1:]


@functools.lru_cache(maxsize=8)
def _gamut_bins(grid: float, ab_range: float, l_step: float, subsamples: int, tol: float):
    half = int(round(ab_range / grid))
    axis = torch.arange(-half, half + 1, dtype=torch.float64) * grid  # bin centres
    centres = torch.cartesian_prod(axis, axis)  # (G*G, 2): (a, b) pairs
    # Sub-samples of each cell, strictly inside it: offsets in (-grid/2, grid/2).
    offsets = (torch.arange(subsamples, dtype=torch.float64) + 0.5) / subsamples - 0.5
    offsets = torch.cartesian_prod(offsets, offsets) * grid  # (S*S, 2)
    L = torch.arange(0, 100 + l_step / 2, l_step, dtype=torch.float64)  # (nL,)
    ab = (centres[:, None, None, :] + offsets[None, :, None, :]).expand(-1, -1, len(L), -1)
    Ls = L.view(1, 1, -1, 1).expand(ab.shape[0], ab.shape[1], -1, 1)
    lab = torch.cat([Ls, ab], dim=-1).reshape(1, -1, 3).permute(2, 0, 1)[None]  # (1, 3, 1, N)
    rgb = lab_to_rgb(lab, clip=False)[0, :, 0].T  # (N, 3)
    valid = ((rgb >= -tol) & (rgb <= 1 + tol)).all(dim=1)
    keep = valid.view(len(centres), -1).any(dim=1)  # some L and some point of the cell
    return centres[keep].float()


def ab_gamut_bins(grid: float = 10.0, ab_range: float = 110.0, l_step: float = 1.0,
                  subsamples: int = 5, tol: float = 1e-3) -> torch.Tensor:
    """The quantised ab plane: centres of the grid cells that contain some displayable colour.

    Zhang et al. (2016), Sec. 2.1, quantise ab with grid size 10 and keep the Q = 313 in-gamut
    bins. Here the set is recomputed: a cell (centre
    +- grid/2 in a and b) is kept if, for some L in 0..100 (step ``l_step``) and some of its
    ``subsamples`` x ``subsamples`` points, :func:`lab_to_rgb` without clipping lands in
    [-tol, 1 + tol]^3.

    Parameters
    ----------
    grid : float
        Bin size in Lab units.
    ab_range : float
        Centres run over [-ab_range, ab_range] in a and b.
    l_step, subsamples, tol : float, int, float
        Sampling of L, sampling of each cell, and slack on the [0, 1] test.

    Returns
    -------
    bins : (Q, 2) float32 tensor
        (a, b) centres, on CPU (move them with ``.to(logits.device)``).

    Notes
    -----
    This does *not* reproduce the paper's 313. With the defaults Q = 250; finer sampling of the
    cells converges to about 260 (8 x 8 sub-samples: 256), and a finer L grid adds only a few
    (step 0.25: 253). The sRGB gamut simply covers about 260 cells of size 10. Larger ``tol``
    counts colours that are *not* displayable (tol = 0.1 gives 302), so it is not a fix. The
    released set (resources/pts_in_hull.npy) came from a procedure the paper does not describe;
    it is fuller than the sRGB gamut: adding every cell whose centre is within one grid step of
    a kept cell gives 316, close to 313, which suggests (unconfirmed) a one-cell margin. The
    result is cached; a clone is returned.
    """
    return _gamut_bins(float(grid), float(ab_range), float(l_step), int(subsamples),
                       float(tol)).clone()


def _squared_distances(ab: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W), (Q, 2) -> (B, H, W, Q) squared distances in the ab plane."""
    pixels = ab.permute(0, 2, 3, 1)  # (B, H, W, 2)
    return ((pixels[..., None, :] - bins.to(ab)) ** 2).sum(dim=-1)


def soft_encode(ab: torch.Tensor, bins: torch.Tensor, neighbours: int = 10,
                sigma: float = 5.0) -> torch.Tensor:
    """Soft-encoded targets Z (Zhang et al. 2016, Sec. 2.1, the H^{-1}_gt mapping of Eq. 2).

    Each pixel's ab is spread over its ``neighbours`` nearest bins with Gaussian weights
    exp(-d^2 / (2 sigma^2)), normalised to sum 1. The paper says 5 neighbours; the released code
    (caffe_traininglayers.py, NNEncLayer) uses 10, and the author calls 5 a typo
    (richzhang/colorization issue #59). We follow the code.

    Parameters
    ----------
    ab : (B, 2, H, W) tensor, Lab units
    bins : (Q, 2) tensor, from :func:`ab_gamut_bins`

    Returns
    -------
    Z : (B, Q, H, W) tensor
        Non-negative, at most ``neighbours`` non-zeros per pixel, sums to 1 over Q.
    """
    d2 = _squared_distances(ab, bins)  # (B, H, W, Q)
    near_d2, near_idx = d2.topk(neighbours, dim=-1, largest=False, sorted=False)  # (B, H, W, neighbours)
    weights = torch.exp(-near_d2 / (2 * sigma**2))
    weights = weights / weights.sum(dim=-1, keepdim=True)
    Z = torch.zeros_like(d2).scatter_(-1, near_idx, weights)  # (B, H, W, Q)
    return Z.permute(0, 3, 1, 2)  # (B, Q, H, W)


def ab_prior(ab_images: torch.Tensor, bins: torch.Tensor, sigma: float = 5.0) -> torch.Tensor:
    """Smoothed empirical distribution p of colours (Zhang et al. 2016, Sec. 2.2, p~ in Eq. 4).

    Count the nearest bin of every pixel, then smooth with a Gaussian of width ``sigma`` over
    the ab plane: p~_q is proportional to sum_r exp(-|c_q - c_r|^2 / (2 sigma^2)) p_r, with c the
    bin centres, renormalised to sum 1.

    Parameters
    ----------
    ab_images : (B, 2, H, W) tensor, Lab units
    bins : (Q, 2) tensor

    Returns
    -------
    prior : (Q,) tensor, non-negative, sums to 1
    """
    bins = bins.to(ab_images)
    nearest = _squared_distances(ab_images, bins).argmin(dim=-1)  # (B, H, W)
    counts = torch.bincount(nearest.flatten(), minlength=len(bins)).to(bins.dtype)
    p = counts / counts.sum()
    kernel = torch.exp(-torch.cdist(bins, bins) ** 2 / (2 * sigma**2))  # (Q, Q)
    smoothed = kernel @ p
    return smoothed / smoothed.sum()


def rebalancing_weights(prior: torch.Tensor, lam: float = 0.5) -> torch.Tensor:
    """Class-rebalancing weights w (Zhang et al. 2016, Eq. 4).

    w is proportional to ((1 - lam) p~ + lam / Q)^-1, normalised so that sum_q p~_q w_q = 1:
    on average over the training colours the loss keeps its scale, while rare (saturated) colours
    weigh more. ``lam = 1`` gives w = 1 everywhere; ``lam = 0`` gives w = 1 / (Q p~), infinite
    for colours never seen (the smoothed prior underflows to 0 far from the data), so keep
    ``lam > 0``.

    prior : (Q,) tensor -> weights : (Q,) tensor
    """
    Q = prior.shape[0]
    w = 1 / ((1 - lam) * prior + lam / Q)
    return w / (prior * w).sum()


def rebalanced_loss(logits: torch.Tensor, targets: torch.Tensor,
                    weights: torch.Tensor) -> torch.Tensor:
    """Class-rebalanced multinomial cross-entropy (Zhang et al. 2016, Eq. 2 with Eq. 3).

    L = -sum_{h,w} v(Z_hw) sum_q Z_hwq log Zhat_hwq, Zhat = softmax(logits) over q and
    v(Z_hw) = weights[argmax_q Z_hw], the weight of the pixel's nearest bin.
    Here the sum over pixels is replaced by the *mean* over batch and pixels, so the loss does not
    grow with image size or batch size (this only rescales the learning rate).

    Parameters
    ----------
    logits : (B, Q, H, W) tensor
    targets : (B, Q, H, W) tensor
        Soft-encoded Z from :func:`soft_encode`.
    weights : (Q,) tensor
        From :func:`rebalancing_weights`.

    Returns
    -------
    loss : scalar tensor
    """
    cross_entropy = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1)  # (B, H, W)
    v = weights.to(logits)[targets.argmax(dim=1)]  # (B, H, W)
    return (v * cross_entropy).mean()


def annealed_mean(logits: torch.Tensor, bins: torch.Tensor,
                  temperature: float = 0.38) -> torch.Tensor:
    """Decode a colour distribution into one ab value (Zhang et al. 2016, Eq. 5).

    H(Z) = E[f_T(Z)] with f_T(z) = exp(log z / T) / sum_q exp(log z_q / T), which equals
    softmax(logits / T). T -> 0 gives the mode's bin centre (vivid but patchy), T = 1 the mean
    (smooth but desaturated); the paper picks T = 0.38.

    Parameters
    ----------
    logits : (B, Q, H, W) tensor
    bins : (Q, 2) tensor

    Returns
    -------
    ab : (B, 2, H, W) tensor, Lab units
    """
    probabilities = F.softmax(logits / temperature, dim=1)  # (B, Q, H, W)
    return torch.einsum("bqhw,qc->bchw", probabilities, bins.to(logits))


def ab_regression_loss(pred_ab: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """The L2 baseline (Zhang et al. 2016, Eq. 1): 1/2 ||Y_hw - Yhat_hw||^2, averaged over pixels.

    Its minimiser is the conditional mean of the plausible colours, hence the grey results for
    objects that could be several colours. pred_ab, ab : (B, 2, H, W) -> scalar tensor.
    """
    return 0.5 * ((pred_ab - ab) ** 2).sum(dim=1).mean()


def hue_conditioned_logits(logits: torch.Tensor, bins: torch.Tensor, hue_degrees: float,
                           width_degrees: float = 90.0, min_mass: float = 0.1,
                           min_chroma: float = 10.0) -> torch.Tensor:
    """Ask the network "and if it were this hue?": keep, where plausible, only bins of one hue sector.

    For every pixel that puts at least ``min_mass`` of its predicted probability on bins whose
    hue atan2(b, a) lies within ``width_degrees / 2`` of ``hue_degrees`` (and whose chroma is at
    least ``min_chroma``), the other bins are removed; other pixels keep their distribution.
    Decoding the result gives one of the several colourings the network finds plausible (the
    paper's "inherent ambiguity"), without inventing colours the network gave no mass to.

    logits : (B, Q, H, W), bins : (Q, 2) -> logits (B, Q, H, W) with -inf on removed bins.
    """
    bins = bins.to(logits)
    hue = torch.rad2deg(torch.atan2(bins[:, 1], bins[:, 0]))  # (Q,), degrees in (-180, 180]
    offset = (hue - hue_degrees + 180) % 360 - 180  # signed angle to the sector's centre
    in_sector = (offset.abs() <= width_degrees / 2) & (bins.norm(dim=1) >= min_chroma)  # (Q,)
    mass = (F.softmax(logits, dim=1) * in_sector.view(1, -1, 1, 1)).sum(dim=1, keepdim=True)  # (B, 1, H, W)
    keep = in_sector.view(1, -1, 1, 1) | (mass < min_mass)  # (B, Q, H, W)
    return logits.masked_fill(~keep, float("-inf"))
