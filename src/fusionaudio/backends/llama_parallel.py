"""Several chat generations decoded together as parallel sequences of one llama.cpp context.

Where decoding is bound by reading the weights (a GPU build, a CPU with many cores), a
step over four sequences reads them once for four tokens, so a batch of answers costs far
less than the same answers one after another; on a 2-core CPU, where one token already
fills the cores, it costs about the same (docs/benchmarks.md). The prompts of one stage share their instructions: that
prefix is evaluated once, on sequence 0, and shared with the others through the unified
KV cache (no copy), and it stays cached for the next batch. Each sequence has its own
sampler chain (its JSON grammar, temperature and seed), the chain llama-cpp-python builds
for one completion, so a fixed seed gives the same answers run to run at one batch size.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fusionaudio.backends.llm import GenerationRequest, LLMReply

# llama-cpp-python's defaults for a chat completion, which the one-at-a-time path uses.
TOP_K = 40
TOP_P = 0.95
MIN_P = 0.05
# Sequences decoded together at most; a CPU gains nothing beyond a few, a GPU build of
# llama.cpp little beyond this, and each one adds n_ctx cells to the KV cache.
MAX_PARALLEL = 8
# The shared prefix is cached in blocks of at most this many tokens (``_block_ends``).
PREFIX_BLOCK = 64


@dataclass
class _Sampler:
    """A sequence's sampling chain and, for a JSON answer, its grammar.

    The grammar is checked against the token the chain picks and applied to the whole
    vocabulary only when it rejects that token, as llama.cpp's own sampler does: filtering
    150k candidates through a grammar on every step costs a third of a CPU's decode time.
    Greedy answers are unchanged by this; sampled ones come from the same distribution
    restricted to the grammar.
    """

    chain: Any
    grammar: Any | None

    def sample(self, ctx: Any, index: int, candidates: Any) -> int:
        import llama_cpp

        token = int(self.chain.sample(ctx, index))  # llama.cpp accepts it into the chain
        if self.grammar is None:
            return token
        logits = llama_cpp.llama_get_logits_ith(ctx.ctx, index)
        one = (llama_cpp.llama_token_data * 1)(
            llama_cpp.llama_token_data(token, logits[token], 0.0)
        )
        single = llama_cpp.llama_token_data_array(data=one, size=1, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(self.grammar.sampler, ctypes.byref(single))
        if one[0].logit == -math.inf:
            candidates.copy_logits(np.ctypeslib.as_array(logits, shape=(candidates.n_vocab,)))
            llama_cpp.llama_sampler_apply(self.grammar.sampler, ctypes.byref(candidates.candidates))
            llama_cpp.llama_sampler_apply(self.chain.sampler, ctypes.byref(candidates.candidates))
            token = int(candidates.candidates_data.id[candidates.candidates.selected])
        self.grammar.accept(token)
        return token


@dataclass
class _Sequence:
    seq_id: int
    prompt: list[int]
    max_tokens: int
    sampler: _Sampler
    started: float
    tokens: list[int] = field(default_factory=list)
    n_past: int = 0
    done: bool = False
    latency_s: float = 0.0


class ParallelDecoder:
    """One llama.cpp context of ``n_parallel`` sequences over an already loaded model."""

    def __init__(self, llama: Any, n_parallel: int, n_ctx_per_seq: int, threads: int) -> None:
        import llama_cpp
        from llama_cpp import llama_chat_format
        from llama_cpp._internals import LlamaBatch, LlamaContext, LlamaTokenDataArray

        self._llama = llama
        # A larger stage batch runs in waves: the context holds n_ctx cells per sequence.
        self.n_parallel = max(1, min(n_parallel, MAX_PARALLEL))
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx_per_seq * self.n_parallel
        params.n_batch = 512
        params.n_ubatch = 512
        params.n_seq_max = self.n_parallel
        params.kv_unified = True  # the shared prefix lives once, in cells of every sequence
        params.n_threads = threads
        params.n_threads_batch = threads
        self._ctx = LlamaContext(model=llama._model, params=params, verbose=False)
        self._batch = LlamaBatch(n_tokens=512, embd=0, n_seq_max=self.n_parallel, verbose=False)
        self._vocab = llama._model.vocab
        model = llama._model
        eos = model.token_eos()
        template = llama.metadata.get("tokenizer.chat_template")
        if template is None:
            raise ValueError("the GGUF has no chat template; parallel decoding needs one")
        self._format = llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=model.token_get_text(eos) if eos != -1 else "",
            bos_token=model.token_get_text(model.token_bos()) if model.token_bos() != -1 else "",
            stop_token_ids=[eos],
        )
        self._cached_prefix: list[int] = []
        self._stale = False
        self._grammars: dict[str, Any] = {}
        self._candidates = LlamaTokenDataArray(n_vocab=model.n_vocab())

    def close(self) -> None:
        self._batch.close()
        self._ctx.close()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[LLMReply]:
        """Each request's reply, in order; more requests than sequences run in waves."""
        replies: list[LLMReply] = []
        for start in range(0, len(requests), self.n_parallel):
            replies.extend(self._wave(requests[start : start + self.n_parallel]))
        return replies

    def _tokens(self, request: GenerationRequest) -> list[int]:
        prompt = self._format(messages=request.messages).prompt
        # the template writes any BOS itself, as llama-cpp-python's own chat handler assumes
        tokens = list(self._llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))
        if not tokens:
            raise ValueError("the chat template gave an empty prompt")
        return tokens

    def _sampler(self, request: GenerationRequest) -> _Sampler:
        from llama_cpp import LlamaGrammar
        from llama_cpp._internals import LlamaSampler

        chain = LlamaSampler()
        if request.temperature <= 0.0:
            chain.add_greedy()
        else:
            chain.add_top_k(TOP_K)
            chain.add_top_p(TOP_P, 1)
            chain.add_min_p(MIN_P, 1)
            chain.add_temp(request.temperature)
            chain.add_dist(request.seed)
        if request.json_schema is None:
            return _Sampler(chain, None)
        # the grammar keeps the schema's key order (sorting would reorder the answer's keys)
        schema = json.dumps(request.json_schema)
        if schema not in self._grammars:
            self._grammars[schema] = LlamaGrammar.from_json_schema(schema, verbose=False)
        grammar = LlamaSampler()
        grammar.add_grammar(self._llama._model, self._grammars[schema])
        return _Sampler(chain, grammar)

    def _wave(self, requests: Sequence[GenerationRequest]) -> list[LLMReply]:
        started = time.perf_counter()
        if any(r.max_tokens < 1 for r in requests):
            raise ValueError("max_tokens must be at least 1")
        prompts = [self._tokens(r) for r in requests]
        # every sequence keeps at least one token of its own, whose logits it samples from
        shared = min(_common_length(prompts), min(len(p) for p in prompts) - 1)
        ends = self._block_ends(prompts[0][:shared])
        prefix = prompts[0][: ends[-1]]
        limit = self._ctx.n_ctx()
        needed = len(prefix) + sum(
            len(p) - len(prefix) + r.max_tokens for p, r in zip(prompts, requests, strict=True)
        )
        if needed > limit:
            raise ValueError(f"{needed} tokens do not fit the parallel context of {limit}")
        self._reuse_prefix(prefix, ends)
        seqs = [
            _Sequence(i, prompt, r.max_tokens, self._sampler(r), started)
            for i, (prompt, r) in enumerate(zip(prompts, requests, strict=True))
        ]
        for seq in seqs[1:]:
            self._ctx.kv_cache_seq_cp(0, seq.seq_id, -1, -1)
        self._prefill(seqs, len(prefix))
        while not all(s.done for s in seqs):
            self._batch.reset()
            active = [s for s in seqs if not s.done]
            for s in active:
                self._add(s.tokens[-1], s.n_past, s.seq_id, logits=True)
                s.n_past += 1
            self._ctx.decode(self._batch)
            for index, s in enumerate(active):
                self._sample(s, index)
        return [self._reply(s) for s in seqs]

    def _block_ends(self, tokens: list[int]) -> list[int]:
        """Where the blocks of a token sequence end: after every control token (the chat
        template's turn markers) and every ``PREFIX_BLOCK`` tokens between them. The ends
        depend only on the tokens before them, so a prefix has the blocks of any longer
        sequence it starts, and the instructions shared by a stage's prompts end on one."""
        import llama_cpp

        ends = [0]
        for i, token in enumerate(tokens, 1):
            if llama_cpp.llama_vocab_is_control(self._vocab, token) or i - ends[-1] == PREFIX_BLOCK:
                ends.append(i)
        return ends

    def _reuse_prefix(self, prefix: list[int], ends: list[int]) -> None:
        """Keep the cached blocks of the shared prefix on sequence 0; evaluate the rest.

        The prefix is evaluated block by block, one decode each, so a cached block holds
        the bits a fresh evaluation would give; and freed cells are refilled from the first
        one, so the cache's layout is the same too. The answers thus depend only on the
        batch's requests, never on what was decoded before. ``ends`` are the prefix's
        block ends (``_block_ends``).
        """
        for seq_id in range(1, self.n_parallel):
            self._remove(seq_id, -1)
        common = _common_length([self._cached_prefix, prefix])
        kept = max(end for end in ends if end <= common)
        self._remove(0, kept)
        if self._stale:  # a removal failed, now or before: start from an empty cache
            self._ctx.kv_cache_clear()
            self._stale = False
            kept = 0
        self._cached_prefix = prefix[:kept]
        for start, stop in itertools.pairwise(ends):
            if start < kept:
                continue
            self._batch.reset()
            for pos in range(start, stop):
                self._add(prefix[pos], pos, 0, logits=False)
            self._ctx.decode(self._batch)
            self._cached_prefix = prefix[:stop]

    def _prefill(self, seqs: list[_Sequence], start: int) -> None:
        """Every sequence's own prompt tokens, packed into batches of up to 512; each
        sequence samples its first token from the batch holding its last prompt token."""
        self._batch.reset()
        last: list[tuple[_Sequence, int]] = []
        for s in seqs:
            for pos in range(start, len(s.prompt)):
                if self._batch.n_tokens() == 512:
                    self._decode_and_sample(last)
                    last = []
                final = pos == len(s.prompt) - 1
                if final:
                    last.append((s, self._batch.n_tokens()))
                self._add(s.prompt[pos], pos, s.seq_id, logits=final)
            s.n_past = len(s.prompt)
        self._decode_and_sample(last)

    def _decode_and_sample(self, last: list[tuple[_Sequence, int]]) -> None:
        if self._batch.n_tokens():
            self._ctx.decode(self._batch)
        for s, index in last:
            self._sample(s, index)
        self._batch.reset()

    def _add(self, token: int, pos: int, seq_id: int, logits: bool) -> None:
        b = self._batch.batch
        i = b.n_tokens
        b.token[i] = token
        b.pos[i] = pos
        b.seq_id[i][0] = seq_id
        b.n_seq_id[i] = 1
        b.logits[i] = logits
        b.n_tokens = i + 1

    def _sample(self, s: _Sequence, index: int) -> None:
        import llama_cpp

        token = s.sampler.sample(self._ctx, index, self._candidates)
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            s.done = True
        else:
            s.tokens.append(token)
            s.done = len(s.tokens) >= s.max_tokens
        if s.done:
            s.latency_s = time.perf_counter() - s.started
            self._remove(s.seq_id, len(self._cached_prefix))

    def _remove(self, seq_id: int, start: int) -> None:
        """Drop a sequence's cells from ``start`` on. Models whose memory cannot drop part
        of a sequence (recurrent ones) refuse; the cache is then cleared before the next
        prefix is laid down instead of being trusted."""
        if not self._ctx.kv_cache_seq_rm(seq_id, start, -1):
            self._stale = True

    def _reply(self, s: _Sequence) -> LLMReply:
        text = self._llama.detokenize(s.tokens).decode("utf-8", errors="ignore")
        return LLMReply(
            text=text,
            prompt_tokens=len(s.prompt),
            completion_tokens=len(s.tokens),
            latency_s=s.latency_s,
        )


def _common_length(lists: Sequence[Sequence[int]]) -> int:
    """How many leading tokens every list shares."""
    first = lists[0]
    n = min(len(x) for x in lists)
    for i in range(n):
        if any(x[i] != first[i] for x in lists[1:]):
            return i
    return n
