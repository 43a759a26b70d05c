import pytest
import torch
from torch.nn import Linear

from d2a.graphs import GraphVAE, archs_to_dense, get_space, kl_divergence, sample_latent


def test_kl_divergence():
    mu, logvar = torch.randn(5, 3), torch.randn(5, 3)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    assert torch.allclose(kl_divergence(mu, logvar), expected, atol=1e-5)
    assert kl_divergence(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max() == 0


def test_sample_latent_is_seeded_and_scaled():
    mu, logvar = torch.full((4000, 2), 3.0), torch.full((4000, 2), 2 * torch.log(torch.tensor(0.5)))
    a = sample_latent(mu, logvar, torch.Generator().manual_seed(0))
    assert torch.equal(a, sample_latent(mu, logvar, torch.Generator().manual_seed(0)))
    assert abs(float(a.mean()) - 3.0) < 0.05 and abs(float(a.std()) - 0.5) < 0.05


@pytest.mark.parametrize('space_name', ['nb201', 'mbv3'])
def test_graph_vae_on_any_encoder(space_name):
    torch.manual_seed(0)
    space = get_space(space_name)
    vae = GraphVAE(Linear(5, 6), 6, 3, space, hidden_channels=8, encoder_name='proj')
    assert set(vae.state_dict()) >= {'proj.weight', 'lin_mu.weight', 'lin_logvar.bias'}
    assert vae.encoder is vae.proj and vae.decoder.max_nodes == space.max_nodes
    mu, logvar = vae.encode(torch.randn(2, 5))
    assert mu.shape == logvar.shape == (2, 3)
    vae.eval()
    assert torch.equal(vae.reparametrize(mu, logvar), mu)
    vae.train()
    assert not torch.equal(vae.reparametrize(mu, logvar), mu)
    node_type, adj = archs_to_dense(space, space.sample(2))
    nll = vae.neg_log_likelihood(mu, node_type, adj)
    assert nll.shape == (2, ) and bool((nll >= 0).all())
    assert float(vae.kl_loss(mu, logvar)) == pytest.approx(float(kl_divergence(mu, logvar).mean()))
