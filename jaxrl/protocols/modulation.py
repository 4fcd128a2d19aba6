"""A modulation pool (L2M, Schmied et al. 2023; L2P, Wang et al. 2022): entries of a learnable key and
what the entry adds to a frozen Decision Transformer (LoRA deltas of every layer's query, value and MLP, or
prompt tokens), retrieved per input by the cosine similarity of a query to the keys.

Pure functions over a params dict {"keys", "lora_a", "lora_b"} or {"keys", "prompt"} and a `Usage`
record. The reference is `ml-jku/L2M`: `src/algos/prompt/l2p.py` (retrieval, usage penalty, pull term),
`base_prompt.py` (usage counts), `l2m.py` (LoRA pool).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.agents.dt import Modulation

KINDS = ("lora", "prompt")


@struct.dataclass
class Usage:
    """How often each entry was selected in training: a running mean of the per-batch selection
    frequencies over every batch so far (never reset between tasks), and the normalised inverse of it
    taken at the last task switch (the weights of the usage penalty)."""

    counts: jax.Array  # [P]
    batches: jax.Array  # [] batches counted
    inverse: jax.Array  # [P], sums to 1

    @classmethod
    def create(cls, size: int) -> "Usage":
        return cls(jnp.zeros(size), jnp.zeros(()), jnp.full(size, 1.0 / size))


def init_pool(key, kind: str, size: int, layers: int, dim: int, rank: int = 8, prompt_length: int = 5) -> dict:
    """Keys uniform in [-1, 1] (l2p.py `_init_keys`). LoRA: A uniform with LoRA's Kaiming bound 1/sqrt(fan-in)
    and B zero, so a fresh entry leaves the model unchanged (the reference applies torch's Kaiming init to its
    5-D pool tensor, whose fan-in then multiplies layers, matrices, width and rank: a far smaller A, which
    only slows the start with Adam). Prompts uniform in [-1, 1] (l2p.py `init_prompts="uniform"`)."""
    if kind not in KINDS:
        raise ValueError(f"unknown modulation pool kind {kind!r}; kinds: {', '.join(KINDS)}")
    k_key, k_q, k_v, k_ff, k_prompt = jax.random.split(key, 5)
    params = {"keys": jax.random.uniform(k_key, (size, dim), minval=-1.0, maxval=1.0)}
    if kind == "prompt":
        params["prompt"] = jax.random.uniform(k_prompt, (size, prompt_length, dim), minval=-1.0, maxval=1.0)
        return params
    widths = {"q": (dim, dim), "v": (dim, dim), "ff": (4 * dim, 4 * dim)}
    keys = {"q": k_q, "v": k_v, "ff": k_ff}
    params["lora_a"] = {
        m: jax.random.uniform(keys[m], (size, layers, n, rank), minval=-1.0, maxval=1.0) / jnp.sqrt(n)
        for m, (n, _) in widths.items()
    }
    params["lora_b"] = {m: jnp.zeros((size, layers, rank, out)) for m, (_, out) in widths.items()}
    return params


def query(state_tokens, mask):
    """The retrieval query: the masked mean of the embedded state tokens [B, K, d] over the context."""
    m = mask[..., None]
    return jnp.sum(state_tokens * m, axis=1) / jnp.maximum(jnp.sum(m, axis=1), 1.0)


def cosine_similarity(queries, keys, eps: float = 1e-12):
    """[B, P]: cos(query_b, key_j), both normalised as torch's F.normalize (norm clamped at eps)."""
    normalise = lambda x: x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)  # noqa: E731
    return normalise(queries) @ normalise(keys).T


def retrieval_scores(similarity, usage: Usage, penalise):
    """The scores top-1 retrieval maximises. With the usage penalty (in training, from the second task
    on) the similarity is mapped to [0, 1] and multiplied by the inverse-usage weights, which steers a new
    task to entries earlier tasks did not use (l2p.py `compute_similarity`)."""
    return jnp.where(penalise, (similarity + 1.0) / 2.0 * usage.inverse, similarity)


def select(similarity, usage: Usage, penalise):
    """Top-1 entry per row, and the similarity to it (the pull term's cosine)."""
    index = jnp.argmax(retrieval_scores(similarity, usage, penalise), axis=-1)
    return index, jnp.take_along_axis(similarity, index[:, None], axis=-1)[:, 0]


def record_usage(usage: Usage, index) -> Usage:
    """Add one batch's selections to the running mean of selection frequencies (base_prompt.py `add_counts`)."""
    size = usage.counts.shape[0]
    frequency = jnp.bincount(index.reshape(-1), length=size) / index.size
    batches = usage.batches + 1
    return usage.replace(counts=usage.counts + (frequency - usage.counts) / batches, batches=batches)


def switch_task(usage: Usage) -> Usage:
    """At a task switch: the penalty's weights become the normalised 1 / (counts + 1e-6)
    (base_prompt.py `update_inv_counts`)."""
    inverse = 1.0 / (usage.counts + 1e-6)
    return usage.replace(inverse=inverse / jnp.sum(inverse))


def modulation(pool: dict, index) -> Modulation:
    """The selected entries' modulation for the DT, per row."""
    if "prompt" in pool:
        return Modulation(prompt=pool["prompt"][index])
    take = lambda tree: {m: x[index] for m, x in tree.items()}  # noqa: E731
    return Modulation(lora_a=take(pool["lora_a"]), lora_b=take(pool["lora_b"]))


def parameter_count(pool: dict) -> int:
    return sum(int(x.size) for x in jax.tree.leaves(pool))
