"""PyTorch eager peer of lisa-fn's training step, driven by bench/peers/peers.ts.

The models are written here from the Hugging Face modeling code (LlamaForCausalLM: RMSNorm,
rotate_half RoPE, grouped-query attention, SwiGLU, tied head; GPT2LMHeadModel: LayerNorm, learned
positions, Conv1D, gelu_new, tied head) in plain eager PyTorch, as a user's script would be. The
step is lisa-fn's: token-mean cross-entropy, backward, global-norm clipping, AdamW with decoupled
decay on matrices only.

Protocol: one JSON request per stdin line, one JSON answer per stdout line.
  {"op": "load", "spec": ModelSpec, "weights": "x.safetensors", "tokens": [[...]], "trains": [names],
   "adamw": {...}}                             -> {"loss": loss before any step, "threads": n}
  {"op": "steps", "n": N}                      -> {"ms": [N step times], "cpuMs": [N process CPU times],
                                                   "loss": last step's loss}
  {"op": "matmul", "n": N}                     -> {"gflops": best of 5 N x N x N float32 products,
                                                   "blas": the BLAS libraries mapped}
Threads: the caller sets OMP_NUM_THREADS and OPENBLAS_NUM_THREADS (Debian's torch does not know
its BLAS is OpenBLAS, so torch.set_num_threads alone would leave OpenBLAS on every core).
"""

import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", name
        begin, end = info["data_offsets"]
        raw = bytearray(data[8 + n + begin : 8 + n + end])
        out[name] = torch.frombuffer(raw, dtype=torch.float32).reshape(info["shape"]).clone()
    return out


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_tables(theta, hd, t):
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    freqs = torch.outer(torch.arange(t, dtype=torch.float32), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)  # [T, hd]
    return emb.cos(), emb.sin()


def causal_mask(t):
    return torch.full((t, t), float("-inf")).triu(1)  # [T, T]


def attention(q, k, v, mask):
    """q [B, H, T, hd], k/v [B, H, T, hd] -> [B, T, H*hd]"""
    b, h, t, hd = q.shape
    scores = q @ k.transpose(-1, -2) / math.sqrt(hd) + mask  # [B, H, T, T]
    out = F.softmax(scores, dim=-1) @ v  # [B, H, T, hd]
    return out.transpose(1, 2).reshape(b, t, h * hd)


class Llama(torch.nn.Module):
    def __init__(self, spec, weights):
        super().__init__()
        self.spec = spec
        self.w = torch.nn.ParameterDict({k.replace(".", "/"): torch.nn.Parameter(v) for k, v in weights.items()})

    def p(self, name):
        return self.w[name.replace(".", "/")]

    def forward(self, tokens):
        s = self.spec
        b, t = tokens.shape
        h, kv, hd, eps = s["nHeads"], s["nKvHeads"], s["headDim"], s["normEps"]
        cos, sin = rope_tables(s["ropeTheta"], hd, t)
        mask = causal_mask(t)
        x = F.embedding(tokens, self.p("model.embed_tokens.weight"))  # [B, T, D]
        for l in range(s["nLayers"]):
            pre = f"model.layers.{l}."
            a = rms_norm(x, self.p(pre + "input_layernorm.weight"), eps)
            q = F.linear(a, self.p(pre + "self_attn.q_proj.weight")).view(b, t, h, hd).transpose(1, 2)
            k = F.linear(a, self.p(pre + "self_attn.k_proj.weight")).view(b, t, kv, hd).transpose(1, 2)
            v = F.linear(a, self.p(pre + "self_attn.v_proj.weight")).view(b, t, kv, hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if kv != h:  # repeat_kv
                k = k.repeat_interleave(h // kv, dim=1)
                v = v.repeat_interleave(h // kv, dim=1)
            x = x + F.linear(attention(q, k, v, mask), self.p(pre + "self_attn.o_proj.weight"))
            m = rms_norm(x, self.p(pre + "post_attention_layernorm.weight"), eps)
            gated = F.silu(F.linear(m, self.p(pre + "mlp.gate_proj.weight"))) * F.linear(m, self.p(pre + "mlp.up_proj.weight"))
            x = x + F.linear(gated, self.p(pre + "mlp.down_proj.weight"))
        x = rms_norm(x, self.p("model.norm.weight"), eps)
        head = self.p("model.embed_tokens.weight") if s["tiedEmbeddings"] else self.p("lm_head.weight")
        return F.linear(x, head)  # [B, T, V]


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPT2(Llama):
    def forward(self, tokens):
        s = self.spec
        b, t = tokens.shape
        d, h, hd, eps = s["dim"], s["nHeads"], s["headDim"], s["normEps"]
        mask = causal_mask(t)
        x = F.embedding(tokens, self.p("transformer.wte.weight")) + self.p("transformer.wpe.weight")[:t]
        for l in range(s["nLayers"]):
            pre = f"transformer.h.{l}."

            def conv1d(x, module):
                return torch.addmm(self.p(pre + module + ".bias"), x.view(-1, x.shape[-1]), self.p(pre + module + ".weight")).view(b, t, -1)

            a = F.layer_norm(x, (d,), self.p(pre + "ln_1.weight"), self.p(pre + "ln_1.bias"), eps)
            q, k, v = (z.view(b, t, h, hd).transpose(1, 2) for z in conv1d(a, "attn.c_attn").split(d, dim=2))
            x = x + conv1d(attention(q, k, v, mask), "attn.c_proj")
            m = F.layer_norm(x, (d,), self.p(pre + "ln_2.weight"), self.p(pre + "ln_2.bias"), eps)
            x = x + conv1d(gelu_new(conv1d(m, "mlp.c_fc")), "mlp.c_proj")
        x = F.layer_norm(x, (d,), self.p("transformer.ln_f.weight"), self.p("transformer.ln_f.bias"), eps)
        head = self.p("transformer.wte.weight") if s["tiedEmbeddings"] else self.p("lm_head.weight")
        return F.linear(x, head)


class Peer:
    def load(self, req):
        spec = req["spec"]
        self.model = (Llama if spec["arch"] == "llama" else GPT2)(spec, read_safetensors(req["weights"]))
        ids = torch.tensor(req["tokens"], dtype=torch.long)  # [B, T + 1]
        self.tokens, self.targets = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()
        trains = set(req["trains"])
        decay, no_decay = [], []
        for name, p in self.model.w.items():
            p.requires_grad_(name.replace("/", ".") in trains)
            if p.requires_grad:
                (decay if p.dim() >= 2 else no_decay).append(p)
        self.trained = decay + no_decay
        c = req["adamw"]
        self.clip = c["maxGradNorm"]
        self.opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": c["weightDecay"]}, {"params": no_decay, "weight_decay": 0.0}],
            lr=c["lr"],
            betas=(c["beta1"], c["beta2"]),
            eps=c["eps"],
        )
        with torch.no_grad():
            return {"loss": self.loss().item(), "threads": torch.get_num_threads()}

    def loss(self):
        logits = self.model(self.tokens)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), self.targets.view(-1))

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss()
        loss.backward()
        if self.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.trained, self.clip)
        self.opt.step()
        return loss.item()

    def steps(self, req):
        ms, cpu = [], []
        loss = float("nan")
        for _ in range(req["n"]):
            t0, c0 = time.perf_counter(), time.process_time()
            loss = self.step()
            ms.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        return {"ms": ms, "cpuMs": cpu, "loss": loss}


def matmul(req):
    n = req["n"]
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return {"gflops": 2 * n**3 / best / 1e9, "blas": blas_libraries()}


def blas_libraries():
    """The BLAS libraries this process has mapped: what torch really calls."""
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "blas" in line or "lapack" in line}
    return sorted(os.path.realpath(p) for p in paths)


def main():
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    peer = Peer()
    for line in sys.stdin:
        req = json.loads(line)
        out = {"load": peer.load, "steps": peer.steps, "matmul": matmul}[req["op"]](req)
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
