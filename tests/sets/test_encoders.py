import pytest
import torch

from d2a.sets import DeepSetsEncoder, HierarchicalSetEncoder, pad_datasets

ENCODERS = [
    lambda: HierarchicalSetEncoder(12, 8, 6, num_heads=2),
    lambda: HierarchicalSetEncoder(12, 8, 6, num_heads=2, num_blocks=1, layer_norm=True),
    lambda: DeepSetsEncoder(12, 8, 6),
]


@pytest.mark.parametrize('make', ENCODERS)
def test_shapes(make):
    torch.manual_seed(0)
    enc = make()
    assert enc(torch.randn(3, 5, 12)).shape == (1, 6)
    assert enc(torch.randn(4, 3, 5, 12)).shape == (4, 6)
    assert str(enc).startswith(enc.__class__.__name__)
    enc.reset_parameters()


@pytest.mark.parametrize('make', ENCODERS)
def test_permutation_invariance(make):
    torch.manual_seed(0)
    enc = make()
    x = torch.randn(4, 7, 12)
    out = enc(x)
    within = torch.stack([c[torch.randperm(7)] for c in x])  # shuffle samples in each class
    across = x[torch.randperm(4)]                             # shuffle the classes
    assert torch.allclose(enc(within), out, atol=1e-5)
    assert torch.allclose(enc(across), out, atol=1e-5)
    # A different dataset gives a different vector (the test could fail).
    assert not torch.allclose(enc(3 * x + 1), out, atol=1e-5)


@pytest.mark.parametrize('make', ENCODERS)
def test_padded_batch_matches_single(make):
    torch.manual_seed(0)
    enc = make()
    a, b = torch.randn(2, 5, 12), torch.randn(4, 5, 12)
    x, mask = pad_datasets([a, b])
    assert x.shape == (2, 4, 5, 12) and mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    x[0, 2:] = 100.0  # padding content must not matter
    out = enc(x, mask)
    assert torch.allclose(out[0], enc(a)[0], atol=1e-5)
    assert torch.allclose(out[1], enc(b)[0], atol=1e-5)


def test_bad_inputs():
    enc = HierarchicalSetEncoder(12, 8, 6, num_heads=2)
    with pytest.raises(ValueError, match='class_mask'):
        enc(torch.randn(2, 3, 5, 12), torch.tensor([[True, False, False], [False] * 3]))
    with pytest.raises(ValueError, match='features'):
        enc(torch.randn(3, 5, 10))
    with pytest.raises(ValueError, match='shape'):
        enc(torch.randn(5, 12))
    with pytest.raises(ValueError, match='divisible'):
        HierarchicalSetEncoder(12, 7, 6, num_heads=2)
    with pytest.raises(ValueError, match='dataset 1'):
        pad_datasets([torch.randn(2, 5, 12), torch.randn(2, 4, 12)])


def test_backward():
    enc = HierarchicalSetEncoder(12, 8, 6, num_heads=2)
    x, mask = pad_datasets([torch.randn(2, 5, 12), torch.randn(3, 5, 12)])
    enc(x, mask).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('make', ENCODERS)
def test_cuda(make):
    enc = make().cuda()
    x, mask = pad_datasets([torch.randn(2, 5, 12), torch.randn(3, 5, 12)])
    out = enc(x.cuda(), mask.cuda())
    assert out.is_cuda and out.shape == (2, 6)


def test_full_class_mask_equals_no_mask():
    torch.manual_seed(0)
    enc = HierarchicalSetEncoder(6, 8, 4, num_heads=2).eval()
    x = torch.randn(2, 3, 5, 6)
    full = torch.ones(2, 3, dtype=torch.bool)
    assert torch.equal(enc(x, full), enc(x))
    part = full.clone()
    part[1, 2] = False
    assert torch.allclose(enc(x, part)[1], enc(x[1:, :2])[0], atol=1e-6)
