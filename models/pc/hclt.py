#!/usr/bin/env python3
"""Hidden Chow-Liu tree (HCLT) probabilistic circuits for MNIST: structure learning and EM training.

The model (Liu, Mandt, Van den Broeck, "Lossless Compression with Probabilistic Circuits",
ICLR 2022):

    p(x) = sum_z  p(z_r) * prod_{v != r} p(z_v | z_pa(v)) * prod_v p(x_v | z_v)

over the 784 pixels x_v in {0..255} of a 28x28 image, with one latent z_v in {0..M-1} per pixel. The
tree (parent pa(v), root r) is a Chow-Liu tree over the pixels: the maximum spanning tree of the
pairwise mutual information, estimated on the training images with pixel values quantized into a few
bins, rooted at its centre (the vertex that minimises the depth). Leaves p(x_v | z_v) are 256-way
categoricals.

Data: the MNIST *test* set (the only MNIST file available). The FIRST 8,000 images train the model
(structure and parameters); the LAST 2,000 are held out and used only for evaluation.

Parameter layout (float model, probabilities; the checkpoints store their natural logs):
    trans[v, i, j] = p(z_v = j | z_pa(v) = i)        [784, M, M]; for the root, every row holds the
                                                      root prior p(z_r = j) (a virtual parent whose
                                                      state does not matter), so every row is a
                                                      distribution and no special case is needed
    leaf[v, j, x]  = p(x_v = x | z_v = j)             [784, M, 256]  (sums to 1 over x)

Training is EM, vectorized over images and over all vertices of one tree level:
  * upward pass (likelihood): lam_v(z_v) = log p(x_subtree(v) | z_v)
        lam_v = log leaf[v, :, x_v] + sum_{c child of v} msg_c,
        msg_c(z_v) = log sum_j trans[c, z_v, j] exp(lam_c(j))    (max-subtract, exp, matmul, log)
        log p(x) = log sum_j prior[j] exp(lam_r(j))
  * downward pass, on posteriors (probabilities in [0, 1], so no exp or log is needed): with
    P_c = exp(lam_c - max lam_c) and L_c(i) = sum_j trans[c, i, j] P_c(j) from the upward pass,
        p(z_v = i, z_c = j | x) = q_v(i) trans[c, i, j] P_c(j) / L_c(i)     for each edge v -> c,
        q_c(j) = p(z_c = j | x) = P_c(j) sum_i trans[c, i, j] q_v(i) / L_c(i),
    starting from the root's posterior q_r(j) = prior[j] exp(lam_r(j)) / p(x).
  * expected counts: the pairwise posteriors (transitions), q_r (prior), and q_v per observed
    pixel value (leaves), summed over the images.
  * M-step with additive Dirichlet smoothing (pseudo-counts), optionally stochastic (mini-batch EM
    with a step size: theta <- (1 - eta) theta + eta theta_batch) for the first epochs.

Regularization (8,000 images are few for 784 x M 256-way leaves; see softening_matrix, augment):
  * leaf count softening: an observed mid-gray value also counts, with weight beta, for its
    neighbouring values (Gaussian kernel); 0 and 255 are left alone;
  * data augmentation: one-pixel shifts of every training image, with a lower weight.

Bits per dimension = -log2 p(x) / 784, averaged over images.

Usage (see models/pc/README.md for the commands that made the shipped model):
    python models/pc/hclt.py --M 16 --epochs 15 --minibatch-epochs 3 --soften 0.35 \
        --soften-sigma 3 --shifts 8 --shift-weight 0.5 --ckpt models/pc/work/hclt-M16.npz
Rerunning the same command resumes from the checkpoint (structure, parameters, RNG state, history).
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

N_PIXELS = 784
N_VALUES = 256
N_TRAIN = 8000  # the first 8,000 MNIST test images train the model
N_HELDOUT = 2000  # the last 2,000 are held out for evaluation
DEFAULT_DATA = "/work/shared/data/mnist/t10k-images-idx3-ubyte.gz"
LOG2 = math.log(2.0)


# ----------------------------------------------------------------------------------------- data

def load_idx_images(path: str) -> np.ndarray:
    """Read an idx3-ubyte image file (optionally gzip-compressed) as uint8 [n, rows * cols]."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
    if magic != 2051:
        raise ValueError(f"{path}: not an idx3-ubyte image file (magic {magic})")
    data = np.frombuffer(raw[16:], dtype=np.uint8)
    if data.size != n * rows * cols:
        raise ValueError(f"{path}: expected {n * rows * cols} pixel bytes, found {data.size}")
    return data.reshape(int(n), int(rows * cols))


def load_split(path: str = DEFAULT_DATA) -> tuple[np.ndarray, np.ndarray]:
    """(train, heldout): the first 8,000 and the last 2,000 images of the MNIST test set."""
    images = load_idx_images(path)
    if images.shape != (N_TRAIN + N_HELDOUT, N_PIXELS):
        raise ValueError(f"{path}: expected 10000 x 784 images, found {images.shape}")
    return images[:N_TRAIN], images[N_TRAIN:]


# ------------------------------------------------------------------------------------ structure

def pairwise_mutual_information(x: np.ndarray, bins: int) -> np.ndarray:
    """Mutual information (nats) between every pair of pixels, values quantized to `bins` levels.

    Joint counts of all pairs come from one matmul of the one-hot encodings ([n, 784*bins]); float32
    holds the counts exactly (n < 2^24). Returns a symmetric [784, 784] matrix with a zero diagonal.
    """
    n, d = x.shape
    q = (x.astype(np.int64) * bins) // N_VALUES  # bin index in [0, bins)
    onehot = np.zeros((n, d * bins), dtype=np.float32)
    onehot[np.arange(n)[:, None], np.arange(d)[None, :] * bins + q] = 1.0
    joint = (onehot.T @ onehot).astype(np.float64).reshape(d, bins, d, bins) / n  # p(a, b)
    marg = onehot.sum(0).astype(np.float64).reshape(d, bins) / n  # p(a)
    outer = marg[:, :, None, None] * marg[None, None, :, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log(joint / outer), 0.0)
    mi = terms.sum(axis=(1, 3))
    np.fill_diagonal(mi, 0.0)
    return np.maximum(mi, 0.0)


def maximum_spanning_tree(weights: np.ndarray) -> list[tuple[int, int]]:
    """Prim's algorithm on a dense symmetric weight matrix; returns the d - 1 undirected edges.

    Ties are broken by the lowest vertex index (np.argmax), so the result is deterministic.
    """
    d = weights.shape[0]
    in_tree = np.zeros(d, dtype=bool)
    in_tree[0] = True
    best = weights[0].copy()  # best weight connecting each outside vertex to the tree
    link = np.zeros(d, dtype=np.int64)  # ...and the tree vertex it connects to
    edges = []
    for _ in range(d - 1):
        cand = np.where(in_tree, -np.inf, best)
        v = int(np.argmax(cand))
        edges.append((int(link[v]), v))
        in_tree[v] = True
        better = (~in_tree) & (weights[v] > best)
        best[better] = weights[v][better]
        link[better] = v
    return edges


@dataclass
class Tree:
    """A rooted tree over the pixels, with the orders the trainer and the coder use.

    parent[v] is the parent of v (-1 for the root). `bfs` lists the vertices level by level
    (children of each vertex in increasing index, parents in BFS order), so every depth level is a
    contiguous range `levels[d] = (start, end)` of `bfs` and the children of one level are grouped
    by parent.
    `dfs` is the depth-first pre-order from the root (children in increasing index): the order the
    native coder codes the pixels in.
    """

    parent: np.ndarray
    root: int

    def __post_init__(self):
        d = len(self.parent)
        children: list[list[int]] = [[] for _ in range(d)]
        for v in range(d):
            if self.parent[v] >= 0:
                children[self.parent[v]].append(v)
        self.children = children  # increasing index, since v runs upwards
        bfs, depth = [self.root], np.zeros(d, dtype=np.int64)
        for v in bfs:  # grows while iterating
            for c in children[v]:
                depth[c] = depth[v] + 1
                bfs.append(c)
        if len(bfs) != d:
            raise ValueError("parent array is not a single tree")
        self.bfs = np.array(bfs, dtype=np.int64)
        self.depth = depth
        self.pos = np.empty(d, dtype=np.int64)  # position of each vertex in `bfs`
        self.pos[self.bfs] = np.arange(d)
        dep = depth[self.bfs]
        self.levels = [(int(np.searchsorted(dep, k)), int(np.searchsorted(dep, k, side="right")))
                       for k in range(int(dep.max()) + 1)]
        dfs, stack = [], [self.root]
        while stack:
            v = stack.pop()
            dfs.append(v)
            stack.extend(reversed(children[v]))
        self.dfs = np.array(dfs, dtype=np.int64)

    @property
    def height(self) -> int:
        return len(self.levels) - 1


def root_tree(edges: list[tuple[int, int]], d: int, root: int | None = None) -> Tree:
    """Orient undirected tree edges away from `root` (default: the centre, minimising the depth)."""
    adj: list[list[int]] = [[] for _ in range(d)]
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)

    def bfs_from(s):
        dist = np.full(d, -1, dtype=np.int64)
        par = np.full(d, -1, dtype=np.int64)
        dist[s], queue = 0, [s]
        for v in queue:
            for w in adj[v]:
                if dist[w] < 0:
                    dist[w], par[w] = dist[v] + 1, v
                    queue.append(w)
        return dist, par

    if root is None:  # centre = middle vertex of a longest path (two BFS sweeps)
        a = int(np.argmax(bfs_from(0)[0]))
        dist, par = bfs_from(a)
        b = int(np.argmax(dist))
        path = [b]
        while path[-1] != a:
            path.append(int(par[path[-1]]))
        root = path[len(path) // 2]
    _, parent = bfs_from(root)
    return Tree(parent=parent, root=int(root))


def chow_liu_tree(x: np.ndarray, bins: int, root: int | None = None) -> Tree:
    """Chow-Liu tree of the pixels of `x` (MI on `bins` quantization levels), rooted at its
    centre."""
    mi = pairwise_mutual_information(x, bins)
    return root_tree(maximum_spanning_tree(mi), x.shape[1], root)


# ---------------------------------------------------------------------------------------- model

class HCLT:
    """An HCLT with M latent states per pixel; parameters in log space, float64 master copy.

    `log_trans` [784, M, M] and `log_leaf` [784, M, 256] follow the layout in the module docstring
    (indexed by original pixel index). The passes run in `dtype` (float32 by default) on
    [vertices, M, images] arrays with the vertices in `tree.bfs` order, one batched matmul per tree
    level; images on the last axis keep the reductions over latent states fast and the matmuls
    large.
    """

    def __init__(self, tree: Tree, M: int, log_trans: np.ndarray, log_leaf: np.ndarray):
        self.tree, self.M = tree, M
        self.log_trans = log_trans
        self.log_leaf = log_leaf
        self.dtype = np.float32  # working precision of the passes (float64 for tests)
        t = tree
        ppos = np.full(N_PIXELS, -1, dtype=np.int64)
        ppos[1:] = t.pos[t.parent[t.bfs[1:]]]
        self.parent_pos = ppos  # parent's position in bfs order, for each bfs position
        # For each level d >= 1: the distinct parent positions and the start of each parent's run
        # of children inside the level (children are grouped by parent in bfs order).
        self.groups = []
        for s, e in t.levels[1:]:
            pp = ppos[s:e]
            starts = np.flatnonzero(np.r_[True, pp[1:] != pp[:-1]])
            self.groups.append((pp[starts], starts))

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def random_init(cls, tree: Tree, M: int, x_train: np.ndarray, seed: int) -> "HCLT":
        """Random transitions; leaves = smoothed per-pixel histograms, randomly perturbed per
        state."""
        rng = np.random.default_rng(seed)
        trans = rng.uniform(0.5, 1.5, size=(N_PIXELS, M, M))
        trans /= trans.sum(-1, keepdims=True)
        trans[tree.root] = trans[tree.root, 0]  # root: every row is the prior
        hist = np.zeros((N_PIXELS, N_VALUES))
        np.add.at(hist, (np.arange(N_PIXELS)[None, :], x_train), 1.0)
        hist = (hist + 1.0) / (hist + 1.0).sum(-1, keepdims=True)
        leaf = hist[:, None, :] * rng.uniform(0.2, 1.8, size=(N_PIXELS, M, N_VALUES))
        leaf /= leaf.sum(-1, keepdims=True)
        return cls(tree, M, np.log(trans), np.log(leaf))

    @property
    def n_parameters(self) -> int:
        """Free parameters: root prior (M-1), transitions (783*M*(M-1)), leaves (784*M*255)."""
        M = self.M
        return (M - 1) + (N_PIXELS - 1) * M * (M - 1) + N_PIXELS * M * (N_VALUES - 1)

    # -- passes -----------------------------------------------------------------------------------

    def _bfs_params(self):
        """(trans [V, M, M] probabilities, flat log leaves [V*M*256], log prior [M]), bfs order."""
        t = self.tree
        trans = np.exp(self.log_trans[t.bfs]).astype(self.dtype)
        leaf = np.ascontiguousarray(self.log_leaf[t.bfs], dtype=self.dtype).reshape(-1)
        log_prior = self.log_trans[t.root, 0].astype(self.dtype)
        return trans, leaf, log_prior

    def _upward(self, x, params, observed=None):
        """Upward pass on uint8 images x [n, 784], in log space.

        observed: optional bool [n, 784]; unobserved pixels are summed out (their leaf term is
        log 1 = 0), so logp is then the log marginal of the observed pixels.

        Returns (P, L, q_root, logp), P and L [V, M, n] in bfs order (rows >= 1), with
            lam[k, i] = log p(x in the subtree of vertex k | z_k = i)      (log-likelihood)
            P[k, i]   = exp(lam[k, i] - max_i lam[k, i])                  (scaled likelihood)
            L[k, i]   = sum_j trans[k, i, j] P[k, j]                      (scaled message to the
                        parent: its log plus the max is msg_k(i) = log p(x_subtree(k) | z_pa = i))
            q_root    = p(z_root | x) [M, n],  logp = log p(x) [n].
        """
        trans, leaf, log_prior = params
        t, M = self.tree, self.M
        n = len(x)
        xb = x[:, t.bfs].T.astype(np.int32)  # [V, n]
        base = (np.arange(N_PIXELS * M, dtype=np.int32) * N_VALUES).reshape(N_PIXELS, M, 1)
        lam = leaf.take(base + xb[:, None, :])  # [V, M, n]  log p(x_v | z_v)
        if observed is not None:
            lam *= observed[:, t.bfs].T[:, None, :]
        L = np.empty_like(lam)
        for level in range(t.height, 0, -1):
            s, e = t.levels[level]
            P = lam[s:e]  # a view: the level's lam becomes its P in place
            a = P.max(axis=1, keepdims=True)  # [K, 1, n]
            P -= a
            np.exp(P, out=P)
            msg = np.matmul(trans[s:e], P)  # sum_j T[i, j] exp(lam_j - a)
            L[s:e] = msg
            np.log(msg, out=msg)
            msg += a
            parents, starts = self.groups[level - 1]
            lam[parents] += np.add.reduceat(msg, starts, axis=0)
        r = lam[0] + log_prior[:, None]  # [M, n]
        a = r.max(axis=0)
        r -= a
        np.exp(r, out=r)
        z = r.sum(axis=0)
        logp = a + np.log(z)
        return lam, L, r / z, logp

    def log_prob(self, x: np.ndarray, chunk: int = 1000) -> np.ndarray:
        """Natural log p(x) (float64 [n]) of uint8 images x [n, 784]."""
        params = self._bfs_params()
        out = [self._upward(x[i:i + chunk], params)[3] for i in range(0, len(x), chunk)]
        return np.concatenate(out).astype(np.float64)

    def log_marginal(self, x: np.ndarray, observed: np.ndarray, chunk: int = 1000) -> np.ndarray:
        """Natural log p(x_observed) (float64 [n]): the pixels where `observed` is False are summed
        out. With observed = the first k pixels of `tree.dfs`, consecutive differences are the
        conditionals p(x_v | pixels before v in coding order) a sequential coder uses."""
        params = self._bfs_params()
        out = [self._upward(x[i:i + chunk], params, observed[i:i + chunk])[3]
               for i in range(0, len(x), chunk)]
        return np.concatenate(out).astype(np.float64)

    def bpd(self, x: np.ndarray, chunk: int = 1000) -> float:
        """Mean bits per dimension of images x."""
        return float(-self.log_prob(x, chunk).mean() / (N_PIXELS * LOG2))

    def expected_counts(self, x: np.ndarray, params=None, weights=None):
        """E-step on images x: (trans_counts [V,M,M], leaf_counts [V,M,256], log p [n]), bfs order.

        trans_counts for the root (bfs position 0) holds the root posterior counts on row 0.
        weights: optional [n] weight of each image in the counts.

        The downward pass works with posteriors, which need no exp or log: for an edge p -> c,
            p(z_p = i, z_c = j | x) = A[i] trans[c, i, j] P_c[j],   A[i] = q_p(i) / L_c(i)
        (sums to 1 over i, j since sum_j trans[c, i, j] P_c[j] = L_c(i)), hence the child's
        posterior q_c(j) = P_c[j] * sum_i A[i] trans[c, i, j]. L_c >= min_j trans[c, i, j] > 0
        (smoothed parameters) keeps the division safe.
        """
        if params is None:
            params = self._bfs_params()
        trans, leaf, log_prior = params
        t, M = self.tree, self.M
        P, L, q_root, logp = self._upward(x, params)
        q = P  # overwritten level by level with the posteriors p(z_k | x)
        q[0] = q_root if weights is None else q_root * weights.astype(self.dtype)
        # (the recursion below is linear in q[0], so the weights carry to every count)
        tcounts = np.zeros((N_PIXELS, M, M), dtype=np.float64)
        tcounts[0, 0] = q[0].sum(axis=1)
        for level in range(1, t.height + 1):
            s, e = t.levels[level]
            A = q[self.parent_pos[s:e]]
            A /= L[s:e]
            tcounts[s:e] = trans[s:e] * np.matmul(A, P[s:e].transpose(0, 2, 1))
            q[s:e] *= np.matmul(trans[s:e].transpose(0, 2, 1), A)
        xb = x[:, t.bfs].T  # [V, n]
        # leaf counts: 0 is most pixels' value; count the others and give value 0 the rest
        v, i = np.nonzero(xb)
        idx = ((v * M)[:, None] + np.arange(M)) * N_VALUES + xb[v, i].astype(np.intp)[:, None]
        lcounts = np.bincount(idx.ravel(), weights=q[v, :, i].ravel(),
                              minlength=N_PIXELS * M * N_VALUES).reshape(N_PIXELS, M, N_VALUES)
        lcounts[:, :, 0] += q.sum(axis=2, dtype=np.float64) - lcounts.sum(axis=2)
        return tcounts, lcounts, logp

    # -- M-step -----------------------------------------------------------------------------------

    def m_step(self, tcounts_bfs, lcounts_bfs, trans_alpha, leaf_prior, step=1.0):
        """New parameters from expected counts (bfs order) plus pseudo-counts, mixed with step size.

        trans_alpha: pseudo-count added to every transition and prior entry.
        leaf_prior: [256] or [784, M, 256] pseudo-counts added to the leaf distributions.
        """
        t = self.tree
        tc = np.empty_like(tcounts_bfs)
        tc[t.bfs] = tcounts_bfs
        lc = np.empty_like(lcounts_bfs)
        lc[t.bfs] = lcounts_bfs
        tc[t.root] = tc[t.root, 0]  # root: prior counts on every row
        trans = tc + trans_alpha
        trans /= trans.sum(-1, keepdims=True)
        leaf = lc + leaf_prior
        leaf /= leaf.sum(-1, keepdims=True)
        if step < 1.0:
            trans = (1 - step) * np.exp(self.log_trans) + step * trans
            leaf = (1 - step) * np.exp(self.log_leaf) + step * leaf
        self.log_trans = np.log(trans)
        self.log_leaf = np.log(leaf)


# ---------------------------------------------------------------------------------- checkpoints

def save_checkpoint(path, model: HCLT, epoch, history, rng, config):
    tmp = path + ".tmp.npz"
    np.savez_compressed(
        tmp, parent=model.tree.parent, root=model.tree.root, M=model.M,
        log_trans=model.log_trans, log_leaf=model.log_leaf, epoch=epoch,
        history=json.dumps(history), rng_state=json.dumps(rng.bit_generator.state),
        config=json.dumps(config))
    os.replace(tmp, path)


def load_checkpoint(path):
    """(model, epoch, history, rng_state, config) from a checkpoint written by save_checkpoint."""
    z = np.load(path)
    tree = Tree(parent=z["parent"], root=int(z["root"]))
    model = HCLT(tree, int(z["M"]), z["log_trans"], z["log_leaf"])
    return (model, int(z["epoch"]), json.loads(str(z["history"])), json.loads(str(z["rng_state"])),
            json.loads(str(z["config"])))


# ------------------------------------------------------------------------------------- training

def leaf_pseudocounts(x_train, alpha, kind, soften=None):
    """Dirichlet pseudo-counts for the leaves, total mass `alpha` per distribution (broadcasts to
    [784, M, 256]).

    uniform: alpha / 256 on every value (Laplace smoothing).
    global:  alpha * (0.5 uniform + 0.5 histogram of all training pixels): unseen values of a pixel
             get more mass where pixels in general take them (0 and near 255 in MNIST).
    pixel:   alpha * (0.5 uniform + 0.5 histogram of this pixel's training values, softened with
             the `soften` kernel if given): back-off from p(x_v | z_v) to p(x_v).
    """
    u = np.full(N_VALUES, 1.0 / N_VALUES)
    if kind == "uniform":
        return alpha * u
    if kind == "global":
        hist = np.bincount(x_train.ravel(), minlength=N_VALUES).astype(np.float64)
        return alpha * (0.5 * u + 0.5 * hist / hist.sum())
    hist = np.zeros((N_PIXELS, N_VALUES))
    np.add.at(hist, (np.arange(N_PIXELS)[None, :], x_train), 1.0)
    if soften is not None:
        hist = hist @ soften
    hist /= hist.sum(-1, keepdims=True)
    return (alpha * (0.5 * u + 0.5 * hist))[:, None, :]


def softening_matrix(beta, sigma):
    """[256, 256] row-stochastic kernel that softens observed pixel values (a regularizer).

    An observed value x in 1..254 counts (1 - beta) for x itself and beta spread over 1..254 with a
    discretized Gaussian of width sigma around x; 0 (background) and 255 count for themselves only.
    Leaf counts C[v, j, :] become C @ K: mid-gray values, which are rare and noisy, lend mass to
    their neighbours instead of leaving holes that cost ~16 bits when a held-out image hits them.
    """
    K = np.eye(N_VALUES)
    if beta <= 0:
        return K
    mid = np.arange(1, N_VALUES - 1)
    g = np.exp(-0.5 * ((mid[:, None] - mid[None, :]) / sigma) ** 2)
    g /= g.sum(1, keepdims=True)
    K[1:-1, 1:-1] = (1 - beta) * np.eye(len(mid)) + beta * g
    return K


SHIFTS = {4: [(-1, 0), (1, 0), (0, -1), (0, 1)],
          8: [(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)]}


def shift_images(x, dy, dx):
    """Images x [n, 784] moved by (dy, dx) pixels, the uncovered border filled with 0."""
    img = x.reshape(-1, 28, 28)
    out = np.zeros_like(img)
    out[:, max(dy, 0):28 + min(dy, 0), max(dx, 0):28 + min(dx, 0)] = \
        img[:, max(-dy, 0):28 + min(-dy, 0), max(-dx, 0):28 + min(-dx, 0)]
    return out.reshape(len(x), -1)


def augment(x, shift_weight, shifts=4):
    """(images, weights): x with weight 1, then (if shift_weight > 0) its one-pixel shifts (4: up,
    down, left, right; 8: also the diagonals) with weight shift_weight each."""
    if shift_weight <= 0:
        return x, np.ones(len(x))
    moves = SHIFTS[shifts]
    out = [x] + [shift_images(x, dy, dx) for dy, dx in moves]
    w = np.r_[np.ones(len(x)), np.full(len(moves) * len(x), shift_weight)]
    return np.concatenate(out), w


def train(args):
    os.makedirs(os.path.dirname(os.path.abspath(args.ckpt)), exist_ok=True)
    x_train, x_held = load_split(args.data)
    x_valid = None
    if args.valid:  # hyper-parameter selection without touching the held-out images
        x_train, x_valid = x_train[:-args.valid], x_train[-args.valid:]
    config = {k: v for k, v in vars(args).items() if k not in ("epochs", "time_budget", "fresh")}
    if os.path.exists(args.ckpt) and not args.fresh:
        model, epoch, history, rng_state, saved = load_checkpoint(args.ckpt)
        for k in ("M", "bins", "seed"):
            if saved.get(k) != config[k]:
                sys.exit(f"{args.ckpt}: checkpoint has {k}={saved.get(k)}, asked {config[k]}")
        rng = np.random.default_rng()
        rng.bit_generator.state = rng_state
        log(f"resumed {args.ckpt} at epoch {epoch}")
    else:
        t0 = time.time()
        tree = chow_liu_tree(x_train, args.bins)
        log(f"Chow-Liu tree ({args.bins} bins): root {tree.root} (row {tree.root // 28}, col "
            f"{tree.root % 28}), height {tree.height}, {time.time() - t0:.1f} s")
        model = HCLT.random_init(tree, args.M, x_train, args.seed)
        epoch, history = 0, []
        rng = np.random.default_rng(args.seed + 1)
        log(f"M={args.M}: {model.n_parameters:,} free parameters; init held-out "
            f"{model.bpd(x_held):.4f} bpd")
    soften = softening_matrix(args.soften, args.soften_sigma)
    leaf_prior = leaf_pseudocounts(x_train, args.leaf_alpha, args.leaf_prior, soften)
    start = time.time()
    spent_before = history[-1]["train_seconds"] if history else 0.0
    x_fit, w_fit = augment(x_train, args.shift_weight, args.shifts)
    n, n_fit = len(x_train), len(x_fit)
    if n_fit > n:
        log(f"training on {n} images + {n_fit - n} shifted copies (weight {args.shift_weight})")
    while epoch < args.epochs:
        if args.time_budget and spent_before + time.time() - start > args.time_budget:
            log(f"time budget {args.time_budget:.0f} s reached")
            break
        t0 = time.time()
        full = epoch >= args.minibatch_epochs or args.batch_size >= n_fit
        bs = n_fit if full else args.batch_size
        step = 1.0 if full else args.step_size
        order = np.arange(n_fit) if full else rng.permutation(n_fit)
        total_logp = 0.0
        for b0 in range(0, n_fit, bs):
            batch = order[b0:b0 + bs]
            params = model._bfs_params()
            tc, lc = 0.0, 0.0
            for c0 in range(0, len(batch), args.chunk):
                idx = batch[c0:c0 + args.chunk]
                ctc, clc, logp = model.expected_counts(x_fit[idx], params, w_fit[idx])
                tc, lc = tc + ctc, lc + clc
                total_logp += float(logp[idx < n].sum())  # the original images only
            scale = len(batch) / n_fit  # pseudo-counts in proportion to the batch
            if args.soften > 0:
                lc = lc @ soften
            model.m_step(tc, lc, args.trans_alpha * scale, leaf_prior * scale, step)
        epoch += 1
        # train bpd: from the E-step (parameters before each update); held-out: current parameters
        train_bpd = -total_logp / (n * N_PIXELS * LOG2)
        held_bpd = model.bpd(x_held, args.chunk)
        secs = time.time() - t0
        rec = {"epoch": epoch, "train_bpd_estep": train_bpd, "heldout_bpd": held_bpd,
               "seconds": secs, "step": step, "train_seconds": spent_before + time.time() - start}
        if x_valid is not None:
            rec["valid_bpd"] = model.bpd(x_valid, args.chunk)
        if args.eval_train_every and epoch % args.eval_train_every == 0:
            rec["train_bpd"] = model.bpd(x_train, args.chunk)
        history.append(rec)
        extra = f" train(after) {rec['train_bpd']:.4f}" if "train_bpd" in rec else ""
        extra += f"  valid {rec['valid_bpd']:.4f}" if "valid_bpd" in rec else ""
        log(f"epoch {epoch:3d}  train(E-step) {train_bpd:.4f}{extra}  held-out {held_bpd:.4f} bpd"
            f"  step {step:.3f}  {secs:.1f} s")
        save_checkpoint(args.ckpt, model, epoch, history, rng, config)
    train_bpd = model.bpd(x_train, args.chunk)
    held_bpd = model.bpd(x_held, args.chunk)
    log(f"final: train {train_bpd:.4f} bpd (first {len(x_train):,} images), held-out "
        f"{held_bpd:.4f} bpd (last 2,000 images), {epoch} epochs, "
        f"{(history[-1]['train_seconds'] if history else 0):.0f} s of training")
    return model


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default=DEFAULT_DATA, help="MNIST t10k idx3 images (gz)")
    p.add_argument("--M", type=int, default=16, help="latent states per pixel")
    p.add_argument("--bins", type=int, default=4, help="pixel quantization levels for the MI")
    p.add_argument("--epochs", type=int, default=30, help="EM epochs (total, including resumed)")
    p.add_argument("--minibatch-epochs", type=int, default=0,
                   help="the first epochs use mini-batch EM (fast start), the rest full-batch EM")
    p.add_argument("--batch-size", type=int, default=500, help="images per mini-batch EM update")
    p.add_argument("--step-size", type=float, default=0.3, help="mini-batch EM step size")
    p.add_argument("--chunk", type=int, default=1000, help="images per vectorized pass (memory)")
    p.add_argument("--trans-alpha", type=float, default=0.1,
                   help="pseudo-count per transition entry (per full data pass)")
    p.add_argument("--leaf-alpha", type=float, default=8.0,
                   help="total leaf pseudo-count per distribution (per full data pass)")
    p.add_argument("--leaf-prior", choices=["uniform", "global", "pixel"], default="uniform")
    p.add_argument("--soften", type=float, default=0.0,
                   help="leaf count softening weight beta (0: off), see softening_matrix")
    p.add_argument("--soften-sigma", type=float, default=8.0, help="softening kernel width")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--valid", type=int, default=0,
                   help="hold the last N of the 8,000 training images out as a validation set")
    p.add_argument("--shift-weight", type=float, default=0.0,
                   help="augment with one-pixel shifts of each image at this weight (0: off)")
    p.add_argument("--shifts", type=int, choices=[4, 8], default=4,
                   help="4: up/down/left/right shifts; 8: also the diagonals")
    p.add_argument("--eval-train-every", type=int, default=0,
                   help="also evaluate train bpd with the updated parameters every k epochs")
    p.add_argument("--time-budget", type=float, default=0.0, help="stop after this many seconds")
    p.add_argument("--ckpt", required=True, help="checkpoint .npz (resumed if it exists)")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    args = p.parse_args(argv)
    train(args)


if __name__ == "__main__":
    main()
