#!/usr/bin/env python3
"""Checks of hclt.py (pytest or plain script): tree orders, and E-step counts against finite
differences of log p(x) in float64 (expected counts are the derivatives of log p with respect to
the log-parameters, taken as free unnormalized weights)."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export  # noqa: E402
import hclt  # noqa: E402


def _random_tree(seed, d=hclt.N_PIXELS):
    rng = np.random.default_rng(seed)
    edges = [(int(rng.integers(0, v)), v) for v in range(1, d)]
    return hclt.root_tree(edges, d)


def test_tree_orders():
    t = _random_tree(1)
    d = hclt.N_PIXELS
    assert sorted(t.bfs.tolist()) == list(range(d)) and sorted(t.dfs.tolist()) == list(range(d))
    assert t.parent[t.root] == -1 and t.dfs[0] == t.root and t.bfs[0] == t.root
    seen = set()
    for v in t.dfs:  # pre-order: a parent comes before its children
        assert v == t.root or t.parent[v] in seen
        seen.add(int(v))
    for k, (s, e) in enumerate(t.levels):  # levels are contiguous and grouped by parent
        assert (t.depth[t.bfs[s:e]] == k).all()
        if k:
            pp = t.pos[t.parent[t.bfs[s:e]]]
            assert (np.diff(pp) >= 0).all()
    # a path 0-1-...-783 is rooted at its middle, so its height is half its length
    path = hclt.root_tree([(v - 1, v) for v in range(1, d)], d)
    assert path.root in (391, 392) and path.height == 392


def test_counts_match_finite_differences():
    rng = np.random.default_rng(0)
    t = _random_tree(2)
    M = 3
    x = rng.integers(0, 256, size=(4, hclt.N_PIXELS)).astype(np.uint8)
    model = hclt.HCLT.random_init(t, M, x, seed=3)
    model.log_leaf = model.log_leaf + rng.normal(0, 0.5, model.log_leaf.shape)  # unnormalized ok
    model.dtype = np.float64
    tc, lc, slp = model.expected_counts(x)
    assert abs(slp.sum() - model.log_prob(x).sum()) < 1e-9
    # every image contributes 1 to each vertex's posterior and to each edge's pairwise posterior
    assert np.allclose(lc.sum(axis=(1, 2)), len(x))
    assert np.allclose(tc[1:].sum(axis=(1, 2)), len(x))
    assert np.allclose(tc[0, 0].sum(), len(x))
    eps = 1e-6
    base = model.log_prob(x).sum()
    for _ in range(5):  # transitions of a non-root vertex
        k = int(rng.integers(1, hclt.N_PIXELS))
        v, i, j = t.bfs[k], int(rng.integers(M)), int(rng.integers(M))
        model.log_trans[v, i, j] += eps
        fd = (model.log_prob(x).sum() - base) / eps
        model.log_trans[v, i, j] -= eps
        assert abs(fd - tc[k, i, j]) < 1e-4, (fd, tc[k, i, j])
    for _ in range(5):  # leaves: pick an observed value
        n, k, j = int(rng.integers(len(x))), int(rng.integers(hclt.N_PIXELS)), int(rng.integers(M))
        v = t.bfs[k]
        xv = x[n, v]
        model.log_leaf[v, j, xv] += eps
        fd = (model.log_prob(x).sum() - base) / eps
        model.log_leaf[v, j, xv] -= eps
        assert abs(fd - lc[k, j, xv]) < 1e-4, (fd, lc[k, j, xv])
    # root prior: all rows of the root's slot are the prior; perturb entry j of row 0
    j = 1
    model.log_trans[t.root, 0, j] += eps
    fd = (model.log_prob(x).sum() - base) / eps
    model.log_trans[t.root, 0, j] -= eps
    assert abs(fd - tc[0, 0, j]) < 1e-4, (fd, tc[0, 0, j])


def test_marginals_chain_rule():
    """Summing out everything gives log 1; the dfs-order conditionals sum to log p(x) and, for one
    pixel, sum to 1 over its 256 values."""
    rng = np.random.default_rng(7)
    t = _random_tree(4)
    x = rng.integers(0, 256, size=(3, hclt.N_PIXELS)).astype(np.uint8)
    model = hclt.HCLT.random_init(t, 3, x, seed=2)
    model.dtype = np.float64
    none = np.zeros_like(x, dtype=bool)
    assert np.allclose(model.log_marginal(x, none), 0.0)
    k = 100
    mask = np.zeros((k + 1, hclt.N_PIXELS), dtype=bool)
    for i in range(k + 1):
        mask[i, t.dfs[:i]] = True
    lm = model.log_marginal(np.repeat(x[:1], k + 1, 0), mask)
    full = model.log_marginal(x[:1], np.ones_like(x[:1], dtype=bool))
    assert np.allclose(full, model.log_prob(x[:1]))
    v = t.dfs[k]  # all 256 values of the next pixel given the first k
    xs = np.repeat(x[:1], 256, 0)
    xs[:, v] = np.arange(256)
    m2 = np.repeat(mask[k:k + 1], 256, 0)
    m2[:, v] = True
    cond = model.log_marginal(xs, m2) - lm[k]
    assert abs(np.logaddexp.reduce(cond)) < 1e-9


def test_em_increases_likelihood():
    rng = np.random.default_rng(5)
    t = _random_tree(3)
    x = (rng.random((200, hclt.N_PIXELS)) < 0.3).astype(np.uint8) * 255
    model = hclt.HCLT.random_init(t, 4, x, seed=1)
    prior = hclt.leaf_pseudocounts(x, 1e-6, "uniform")
    last = -np.inf
    for _ in range(4):
        tc, lc, slp = model.expected_counts(x)
        assert slp.sum() >= last - 1e-2
        last = slp.sum()
        model.m_step(tc, lc, 1e-6, prior)


def test_shifts_and_softening():
    x = np.arange(2 * hclt.N_PIXELS).reshape(2, hclt.N_PIXELS)
    img = x.reshape(2, 28, 28)
    down = hclt.shift_images(x, 1, 0).reshape(2, 28, 28)
    assert (down[:, 1:] == img[:, :-1]).all() and (down[:, 0] == 0).all()
    ur = hclt.shift_images(x, -1, 1).reshape(2, 28, 28)
    assert (ur[:, :-1, 1:] == img[:, 1:, :-1]).all()
    assert (ur[:, -1] == 0).all() and (ur[:, :, 0] == 0).all()
    xa, w = hclt.augment(x, 0.25, 8)
    assert len(xa) == 18 and w.sum() == 2 + 16 * 0.25
    K = hclt.softening_matrix(0.35, 3.0)
    assert np.allclose(K.sum(1), 1) and K[0, 0] == 1 and K[255, 255] == 1
    assert K[0, 1:].sum() == 0 and K[1:-1, 0].sum() == 0


def test_quantize_rows():
    rng = np.random.default_rng(0)
    for K in (2, 3, 32, 256):
        for conc in (0.01, 1.0, 100.0):
            p = rng.dirichlet(np.full(K, conc), size=500)
            p[0] = 0.0
            p[0, K - 1] = 1.0  # a one-hot row: every other entry still gets 1
            for quant in (export.quantize_rows, export.quantize_rows_reserve):
                f = quant(p)
                assert f.min() >= 1 and f.max() < 1 << 16 and (f.sum(-1) == 1 << 16).all()
                assert (f == quant(p)).all()  # deterministic


def test_onnx_graph():
    """export_onnx's graph (onnxruntime, float32) = the float64 numpy circuit on the same integer
    tables, for full images and dfs-order marginals (value 256), at batch sizes 1 and 5; its
    initializers are exactly the five shared tensors."""
    import export_onnx
    import onnxruntime as ort

    rng = np.random.default_rng(11)
    t = _random_tree(5)
    M = 3
    x = rng.integers(0, 256, size=(5, hclt.N_PIXELS)).astype(np.uint8)
    model = hclt.HCLT.random_init(t, M, x, seed=4)
    q = export.quantize_model(model)
    qmodel = export.model_from_frequencies(t, M, q)
    mask = np.zeros_like(x, dtype=bool)
    for i, k in enumerate((0, 1, 300, 783, 784)):
        mask[i, t.dfs[:k]] = True
    pixels = np.where(mask, x.astype(np.int64), export_onnx.MARGINALIZED)  # not uint8: 256
    for leaf_gather in ("rows", "flat"):
        m = export_onnx.build_graph(t, M, q, leaf_gather)
        assert sorted(i.name for i in m.graph.initializer) == sorted(
            ["root_prior", "transitions", "leaves", "parent", "image_shape"])
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = 1
        so.log_severity_level = 3
        sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        for inp, ref in ((x.astype(np.int64), qmodel.log_prob(x)),
                         (pixels, qmodel.log_marginal(x, mask))):
            got = sess.run(["log_prob"], {"pixels": inp})[0]
            assert got.dtype == np.float32 and got.shape == (len(x),)
            assert np.abs(got - ref).max() < 1e-3, (leaf_gather, got, ref)
            one = np.concatenate([sess.run(["log_prob"], {"pixels": inp[i:i + 1]})[0]
                                  for i in range(len(x))])
            assert np.abs(one - got).max() < 1e-3
        assert got[0] == 0.0  # nothing observed


if __name__ == "__main__":
    for name, fn in list(globals().items()):
        if name.startswith("test_"):
            fn()
            print("ok", name)
