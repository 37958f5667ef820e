import numpy as np
import pytest
import torch

from mhinr.model import prng
from mhinr.model.network import (
    INRConfig,
    MultiHeadINR,
    assemble,
    baseline_param_count,
    build_network,
    split_cells,
    width_for_params,
)


def test_paper_parameter_count_alpha64_is_464384():
    net = build_network("multihead", (256, 256), 1, heads=(64, 64), alpha=64)
    assert net.parameter_count() == 464_384


def test_paper_parameter_count_alpha256_is_1250816():
    net = build_network("multihead", (256, 256), 1, heads=(64, 64), alpha=256)
    assert net.parameter_count() == 1_250_816


def test_rgb_has_one_head_neuron_per_channel():
    net = build_network("multihead", (256, 256), 3, heads=(64, 64), alpha=64)
    assert net.parameter_count() == 198_144 + 3 * 4096 * 65


def test_splitmix64_matches_the_published_reference_stream():
    # SplitMix64 seeded with 0: the reference C implementation's first three outputs.
    assert prng.splitmix64(0, 3).tolist() == [
        0xE220A8397B1DCDAF,
        0x6E789E6AA1B965F4,
        0x06C45D188009454F,
    ]


def test_connection_stream_is_fixed():
    # Stored expectations: a change here breaks every .inr file ever written.
    assert prng.choose_subsets(7, 3, 10, 4, stream=1).tolist() == [
        [4, 7, 8, 9],
        [0, 3, 4, 6],
        [6, 7, 8, 9],
    ]
    np.testing.assert_allclose(
        prng.normal(7, 4, stream=2), [0.24226231045, 1.765295202889, 1.212617496923, 1.07309532757]
    )


def test_every_head_has_exactly_alpha_distinct_connections():
    net = build_network("multihead", (64, 64), 3, heads=(8, 8), width=32, alpha=5)
    idx = net.heads.index
    assert idx.shape == (3 * 64, 5)
    assert all(len(set(row.tolist())) == 5 for row in idx)
    assert int(idx.min()) >= 0 and int(idx.max()) < 32
    # the draw differs between heads (not one subset repeated)
    assert len({tuple(r.tolist()) for r in idx}) > 150


def test_same_seed_same_network_and_other_seed_differs():
    a = build_network("multihead", (32, 32), 1, heads=(4, 4), width=16, alpha=4, seed=3)
    b = build_network("multihead", (32, 32), 1, heads=(4, 4), width=16, alpha=4, seed=3)
    c = build_network("multihead", (32, 32), 1, heads=(4, 4), width=16, alpha=4, seed=4)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.heads.index, c.heads.index)


def test_dense_product_equals_the_literal_sparse_layer():
    net = build_network("multihead", (64, 64), 2, heads=(8, 8), width=32, alpha=7)
    feats = torch.rand(20, 32)
    torch.testing.assert_close(net.heads(feats), net.heads.forward_gather(feats))


def test_assemble_and_split_cells_are_inverse():
    img = torch.rand(3, 4 * 5, 6 * 7)
    cells = split_cells(img, 4, 6)  # [5·7, 3·4·6]
    assert torch.equal(assemble(cells, 3, 4, 6, 5, 7), img)


def test_grid_places_head_outputs_in_their_cells():
    net = build_network("multihead", (8, 12), 1, heads=(2, 3), width=8, alpha=8)
    with torch.no_grad():
        net.heads.weight.zero_()
        net.heads.bias.copy_(torch.arange(6, dtype=torch.float32))
        img = net.grid(4, 4)[0]
    assert img.shape == (8, 12)
    assert img[0, 0] == 0 and img[0, 11] == 2 and img[7, 0] == 3 and img[7, 11] == 5


@pytest.mark.parametrize("body", ["relu", "sine", "fourier"])
def test_every_body_kind_runs_and_learns(body):
    net = build_network("multihead", (16, 16), 1, heads=(4, 4), width=16, alpha=8, body=body)
    out = net.grid(4, 4)
    assert out.shape == (1, 16, 16)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("kind", ["relu", "siren", "fourier"])
def test_baselines_hit_the_requested_parameter_count(kind):
    width = width_for_params(kind, 464_384)
    net = build_network(kind, (256, 256), 1, width=width)
    assert net.cfg.heads == (1, 1)
    assert net.parameter_count() == baseline_param_count(kind, width, 4, 1)
    assert abs(net.parameter_count() - 464_384) / 464_384 < 0.01


def test_bad_configurations_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="alpha"):
        INRConfig(width=16, alpha=17)
    with pytest.raises(ValueError, match="body"):
        INRConfig(body="tanh")
    with pytest.raises(ValueError, match="larger than the image"):
        build_network("multihead", (8, 8), 1, heads=(16, 16))
    with pytest.raises(ValueError, match="unknown model"):
        build_network("transformer", (8, 8), 1)


def test_config_roundtrips_through_a_dict():
    cfg = INRConfig(heads=(3, 5), cell=(7, 2), channels=3, width=8, alpha=3, body="sine", seed=9)
    d = cfg.to_dict()
    d["heads"], d["cell"] = tuple(d["heads"]), tuple(d["cell"])
    assert INRConfig(**d) == cfg
    assert MultiHeadINR(cfg).cfg.canvas == (21, 10)
