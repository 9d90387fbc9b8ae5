"""A character-level language model: the course's Transformer encoder with a causal mask and an LM head.

A decoder-only language model (GPT) is the encoder of chapter 04 in which every position attends
only to itself and the positions before it (``TransformerConfig(causal=True)``), followed by a
linear layer that scores every character of the vocabulary as the next one. Trained on
sequences ``<s> c1 … cn </s>`` to predict each next character, it generates text by sampling one
character at a time.

Generation here keeps a *key/value cache*: at every step only the newest character passes
through the blocks, and its query attends to the keys and values stored for the earlier
positions. The result equals running the whole prefix again at every step (a test checks it),
at a fraction of the cost — the reason every serving stack for generative models keeps one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from course_lib import checks
from course_lib.nn.attention import scaled_dot_product_attention
from course_lib.nn.transformer import EncoderBlock, ModelOutput, TransformerConfig, TransformerEncoder


class CharLM(nn.Module):
    """Causal Transformer + Linear head: next-character logits (B, L, vocab_size) (chapter 09).

    ``config.causal`` must be True: a language model that could read the next character would
    learn to copy it.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        if not isinstance(config, TransformerConfig):
            raise TypeError(f"config must be a TransformerConfig, got {type(config).__name__}")
        if not config.causal:
            raise ValueError("a language model needs TransformerConfig(causal=True): without the causal mask "
                             "every position sees the character it is asked to predict")
        self.config = config
        self.encoder = TransformerEncoder(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size)

    def forward(self, input_ids: Tensor, mask: Tensor | None = None) -> ModelOutput:
        """Return the encoder's :class:`ModelOutput` with next-character ``logits`` added."""
        output = self.encoder(input_ids, mask)
        output.logits = self.lm_head(output.hidden[-1])
        return output

    @torch.no_grad()
    def step(self, input_ids: Tensor, cache: list[tuple[Tensor, Tensor]] | None) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        """Logits (B, vocab) for the next character after ``input_ids`` (B, 1), the newest character.

        ``cache`` holds each block's keys and values (B, H, t, d_head) of the ``t`` earlier
        positions (None at the start); the updated cache is returned. Eval mode only.
        """
        if self.training:
            raise RuntimeError("step() decodes with the model in eval mode: call model.eval() first")
        if input_ids.dim() != 2 or input_ids.shape[1] != 1:
            raise ValueError(f"step() takes one new character per row, shape (batch, 1); got {tuple(input_ids.shape)}")
        position = 0 if cache is None else cache[0][0].shape[2]
        if position >= self.config.max_len:
            raise ValueError(f"the sequence would exceed max_len={self.config.max_len} of this model")
        encoder = self.encoder
        x = encoder.positional(encoder.embed(input_ids) * math.sqrt(self.config.d_model), start=position)
        new_cache = []
        for index, block in enumerate(encoder.blocks):
            past = None if cache is None else cache[index]
            x, keys, values = _block_step(block, x, past)
            new_cache.append((keys, values))
        x = encoder.final_norm(x)
        return self.lm_head(x[:, -1]), new_cache


def _block_step(block: EncoderBlock, x: Tensor, past: tuple[Tensor, Tensor] | None) -> tuple[Tensor, Tensor, Tensor]:
    """One encoder block on the newest position ``x`` (B, 1, D), attending to the cached positions."""
    attention = block.self_attn
    batch = x.shape[0]
    inputs = block.norm1(x) if block.norm_first else x
    query = attention._split_heads(attention.q_proj(inputs))
    keys = attention._split_heads(attention.k_proj(inputs))
    values = attention._split_heads(attention.v_proj(inputs))
    if past is not None:
        keys, values = torch.cat([past[0], keys], dim=2), torch.cat([past[1], values], dim=2)
    heads, _ = scaled_dot_product_attention(query, keys, values)
    attended = attention.out_proj(heads.transpose(1, 2).reshape(batch, 1, attention.d_model))
    if block.norm_first:
        x = x + attended
        x = x + block.feed_forward(block.norm2(x))
    else:
        x = block.norm1(x + attended)
        x = block.norm2(x + block.feed_forward(x))
    return x, keys, values


@torch.no_grad()
def sample(
    model: CharLM,
    count: int,
    *,
    bos_id: int,
    eos_id: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 256,
    banned_ids: Sequence[int] = (),
    device: torch.device | str = "cpu",
) -> list[list[int]]:
    """``count`` sequences sampled from ``model`` after ``<s>``, each stopped at ``</s>`` (not included) (chapter 09).

    Each step draws from ``softmax(logits / temperature)`` with the key/value cache of
    :meth:`CharLM.step`; ``banned_ids`` (e.g. padding, ``<s>``) are never drawn. A sequence
    that reaches ``max_new_tokens`` without ``</s>`` is returned as it stands. Seeded: the same
    call returns the same sequences.
    """
    if not isinstance(model, CharLM):
        raise TypeError(f"model must be a CharLM, got {type(model).__name__}")
    for name, value in (("count", count), ("max_new_tokens", max_new_tokens), ("batch_size", batch_size)):
        checks.positive_int(name, value)
    checks.temperature(temperature)
    if max_new_tokens + 1 > model.config.max_len:
        raise ValueError(f"max_new_tokens={max_new_tokens} does not fit max_len={model.config.max_len} "
                         "(one position goes to <s>)")
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=torch.device(device)).manual_seed(seed)
    results: list[list[int]] = []
    try:
        for start in range(0, count, batch_size):
            rows = min(batch_size, count - start)
            current = torch.full((rows, 1), bos_id, dtype=torch.long, device=device)
            cache = None
            drawn = torch.empty(rows, 0, dtype=torch.long, device=device)
            finished = torch.zeros(rows, dtype=torch.bool, device=device)
            for _ in range(max_new_tokens):
                logits, cache = model.step(current, cache)
                logits = logits / temperature
                if banned_ids:
                    logits[:, list(banned_ids)] = float("-inf")
                current = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)
                drawn = torch.cat([drawn, current], dim=1)
                finished |= current[:, 0] == eos_id
                if bool(finished.all()):
                    break
            for row in drawn.tolist():
                results.append(row[: row.index(eos_id)] if eos_id in row else row)
    finally:
        model.train(was_training)
    return results
