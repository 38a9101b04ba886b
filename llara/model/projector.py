"""Projectors from recommender item embeddings (E) into the LLM's input space (H)."""

from __future__ import annotations

from typing import Callable

from torch import nn

from llara.config.projector import PROJECTOR_KINDS, ProjectorConfig


def mlp_projector(config: ProjectorConfig, in_dim: int, out_dim: int) -> nn.Module:
    """The paper's projector: Linear(E, H) -> GELU -> Linear(H, H)."""
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))


def linear_projector(config: ProjectorConfig, in_dim: int, out_dim: int) -> nn.Module:
    return nn.Linear(in_dim, out_dim)


def deep_mlp_projector(config: ProjectorConfig, in_dim: int, out_dim: int) -> nn.Module:
    hidden = config.hidden_size or out_dim
    widths = [in_dim] + [hidden] * (config.depth - 1) + [out_dim]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers += [nn.GELU(), nn.Dropout(config.dropout)]
    return nn.Sequential(*layers)


PROJECTORS: dict[str, Callable[[ProjectorConfig, int, int], nn.Module]] = {
    "mlp": mlp_projector, "linear": linear_projector, "deep_mlp": deep_mlp_projector}
if set(PROJECTORS) != set(PROJECTOR_KINDS):
    raise RuntimeError(f"projector registry {sorted(PROJECTORS)} does not match "
                       f"ProjectorConfig kinds {sorted(PROJECTOR_KINDS)}")


def build_projector(config: ProjectorConfig, in_dim: int, out_dim: int) -> nn.Module:
    return PROJECTORS[config.kind](config, in_dim, out_dim)
