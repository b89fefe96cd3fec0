#!/usr/bin/env python3
"""PyTorch reference for `deno task bench` (scripts/bench.ts runs it; usable on its own).

Two modes:
  perf     (default) what PyTorch (bf16, tensor cores, eager and CUDA graph) does with InternVL-Chat-V1.5's
           real shapes on this GPU — extended from shared/device/torch_baseline.py with the contexts, batches
           and prompt lengths the WebGPU bench reports (decode b1 at ctx 512/4096, b4/b8, prefill 1800/1842,
           ViT 1/7/13 tiles). Random bf16 weights. Needs torch + CUDA.
  --compare DIR  reads the int8 weights the WebGPU bench dumped (a few layers of real width), runs the same
           InternLM2 forward in float32 (weight-only dequantization, REFERENCE §2/§7) or, for the bench's
           LLM.int8 modes, with bitsandbytes' LLM.int8 products where the engine uses them, and writes the
           logits back into DIR. Uses torch (CUDA if present, else CPU) or, without torch, numpy.
Shapes: InternViT-6B-448px-V1-5 (45 layers, hidden 3200, 25 heads, mlp 12800) and InternLM2-20B (48 layers,
hidden 6144, 48 heads, 8 kv heads, head 128, mlp 16384, vocab 92553); --tiny uses the bench's tiny shapes.
"""
import argparse, json, math, os, sys, time

FULL = dict(VH=3200, VHEADS=25, VI=12800, VL=45, S=1025,
            H=6144, NH=48, KVH=8, HD=128, I=16384, V=92553, L=48)
# src/bench/shapes.ts tinyShapes: ViT 112px/14 → 8×8 patches + CLS.
TINY = dict(VH=64, VHEADS=2, VI=128, VL=2, S=65,
            H=64, NH=4, KVH=2, HD=16, I=176, V=1000, L=2)


def perf(args):
    import torch
    dev = args.device
    if dev == "cuda" and not torch.cuda.is_available():
        raise SystemExit(json.dumps({"error": "torch has no CUDA device"}))
    cuda = dev == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    empty_cache = torch.cuda.empty_cache if cuda else (lambda: None)
    t_start = time.time()
    budget = args.budget_s
    left = lambda: budget - (time.time() - t_start)
    sections = set(args.sections.split(","))
    torch.manual_seed(0)
    bf = torch.bfloat16
    sh = TINY if args.tiny else FULL
    res = {"gpu": torch.cuda.get_device_name(0) if cuda else "cpu", "torch": torch.__version__, "tiny": args.tiny,
           "dtype": "bf16", "timing": "cuda events, median" if cuda else "perf_counter, median", "skipped": []}

    def bench(fn, iters=20, warm=3):
        for _ in range(warm): fn()
        sync(); ts = []
        if not cuda:  # --device cpu only checks this script's code paths; its figures mean nothing
            for _ in range(iters):
                t0 = time.perf_counter(); fn(); ts.append((time.perf_counter() - t0) * 1e3)
            ts.sort(); return ts[len(ts) // 2]
        s = torch.cuda.Event(enable_timing=True); e = torch.cuda.Event(enable_timing=True)
        for _ in range(iters):
            s.record(); fn(); e.record(); torch.cuda.synchronize(); ts.append(s.elapsed_time(e))
        ts.sort(); return ts[len(ts) // 2]

    def rms(x): return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5).to(x.dtype)

    if "copy" in sections:
        n = (64 << 20) if args.tiny else (2 << 30)
        a = torch.empty(n, dtype=torch.uint8, device=dev); b = torch.empty_like(a)
        ms = bench(lambda: b.copy_(a)); res["copy_GBps"] = 2 * a.numel() / ms / 1e6; del a, b

    H, NH, KVH, HD, I, V, L = (sh[k] for k in ("H", "NH", "KVH", "HD", "I", "V", "L"))
    if sections & {"decode", "batch", "prefill"}:
        Wqkv = [torch.randn(H, (NH + 2 * KVH) * HD, dtype=bf, device=dev) * 0.02 for _ in range(L)]
        Wo = [torch.randn(H, H, dtype=bf, device=dev) * 0.02 for _ in range(L)]
        W13 = [torch.randn(H, 2 * I, dtype=bf, device=dev) * 0.02 for _ in range(L)]
        W2 = [torch.randn(I, H, dtype=bf, device=dev) * 0.02 for _ in range(L)]
        Wout = torch.randn(H, V, dtype=bf, device=dev) * 0.02
        wbytes = sum(t.numel() * 2 for t in Wqkv + Wo + W13 + W2) + Wout.numel() * 2
        res["llm_weight_GB_bf16"] = wbytes / 1e9

        def decode_fns(B, ctx):
            Kc = [torch.randn(B, KVH, ctx, HD, dtype=bf, device=dev) for _ in range(L)]
            Vc = [torch.randn(B, KVH, ctx, HD, dtype=bf, device=dev) for _ in range(L)]
            x0 = torch.randn(B, 1, H, dtype=bf, device=dev)

            def step():
                x = x0
                for l in range(L):
                    h = rms(x); qkv = h @ Wqkv[l]
                    q = qkv[..., :NH * HD].view(B, 1, NH, HD).transpose(1, 2)
                    o = torch.nn.functional.scaled_dot_product_attention(q, Kc[l], Vc[l], enable_gqa=True)
                    x = x + o.transpose(1, 2).reshape(B, 1, H) @ Wo[l]
                    h = rms(x); g = h @ W13[l]; x = x + (torch.nn.functional.silu(g[..., :I]) * g[..., I:]) @ W2[l]
                return (rms(x) @ Wout).argmax(-1)
            return step, (Kc, Vc)

        with torch.no_grad():
            configs = []
            if "decode" in sections: configs += [(1, 512), (1, 4096)]
            if "batch" in sections: configs += [(4, 512), (8, 512)]
            for B, ctx in configs:
                if left() < 20: res["skipped"].append(f"decode b{B} ctx{ctx}: budget"); continue
                step, kv = decode_fns(B, ctx)
                key = f"b{B}_ctx{ctx}"
                res[f"decode_ms_eager_{key}"] = bench(step)
                if cuda:
                    g = torch.cuda.CUDAGraph(); step(); torch.cuda.synchronize()
                    with torch.cuda.graph(g): step()
                    ms = bench(lambda: g.replay()); res[f"decode_ms_cudagraph_{key}"] = ms
                    res[f"tokens_per_s_cudagraph_{key}"] = B * 1000 / ms
                    del g
                res[f"tokens_per_s_eager_{key}"] = B * 1000 / res[f"decode_ms_eager_{key}"]
                del kv, step; empty_cache()
            if "decode" in sections and "copy_GBps" in res:
                res["decode_int8_roofline_ms_at_copy_bw"] = (wbytes / 2) / (res["copy_GBps"] * 1e6)

            if "prefill" in sections:
                for T in (1800, 1842):
                    if left() < 20: res["skipped"].append(f"prefill {T}: budget"); continue
                    xp = torch.randn(1, T, H, dtype=bf, device=dev)

                    def prefill():
                        x = xp
                        for l in range(L):
                            h = rms(x); qkv = h @ Wqkv[l]
                            q = qkv[..., :NH * HD].view(1, T, NH, HD).transpose(1, 2)
                            k = qkv[..., NH * HD:(NH + KVH) * HD].view(1, T, KVH, HD).transpose(1, 2)
                            v = qkv[..., (NH + KVH) * HD:].view(1, T, KVH, HD).transpose(1, 2)
                            o = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
                            x = x + o.transpose(1, 2).reshape(1, T, H) @ Wo[l]
                            h = rms(x); g = h @ W13[l]; x = x + (torch.nn.functional.silu(g[..., :I]) * g[..., I:]) @ W2[l]
                        return (rms(x[:, -1:]) @ Wout).argmax(-1)
                    ms = bench(prefill, iters=5, warm=2); res[f"prefill_{T}tok_ms"] = ms
                    res[f"prefill_{T}tok_TFLOPs"] = 2 * T * wbytes / 2 / ms / 1e9
        del Wqkv, Wo, W13, W2, Wout; empty_cache()

    if "vit" in sections:
        VH, VHEADS, VI, VL, S = (sh[k] for k in ("VH", "VHEADS", "VI", "VL", "S"))
        with torch.no_grad():
            Wv = [(torch.randn(VH, 3 * VH, dtype=bf, device=dev) * 0.02, torch.randn(VH, VH, dtype=bf, device=dev) * 0.02,
                   torch.randn(VH, VI, dtype=bf, device=dev) * 0.02, torch.randn(VI, VH, dtype=bf, device=dev) * 0.02)
                  for _ in range(VL)]
            # mlp1 (projector): LayerNorm(4·VH) → Linear(4·VH, H) → GELU → Linear(H, H) over tiles·(S−1)/4 tokens
            P1 = torch.randn(4 * VH, H, dtype=bf, device=dev) * 0.02; P2 = torch.randn(H, H, dtype=bf, device=dev) * 0.02
            for tiles in (1, 7, 13):
                if left() < 20: res["skipped"].append(f"vit {tiles} tiles: budget"); continue
                xv = torch.randn(tiles, S, VH, dtype=bf, device=dev)

                def vit():
                    x = xv
                    for (wqkv, wo, w1, w2) in Wv:
                        h = rms(x); qkv = (h @ wqkv).view(tiles, S, 3, VHEADS, VH // VHEADS).permute(2, 0, 3, 1, 4)
                        o = torch.nn.functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
                        x = x + o.transpose(1, 2).reshape(tiles, S, VH) @ wo
                        x = x + torch.nn.functional.gelu(rms(x) @ w1) @ w2
                    y = x[:, 1:].reshape(tiles * (S - 1) // 4, 4 * VH)  # pixel shuffle's data volume
                    y = torch.nn.functional.layer_norm(y, (4 * VH,))
                    return torch.nn.functional.gelu(y @ P1) @ P2
                ms = bench(vit, iters=5, warm=2); res[f"vit_projector_{tiles}tiles_ms"] = ms
                res[f"vit_{tiles}tiles_TFLOPs"] = 2 * tiles * S * sum(w.numel() for w in Wv[0]) * VL / ms / 1e9
    res["wall_s"] = time.time() - t_start
    return res


def compare(args):
    """InternLM2 forward over the int8 weights the bench dumped, in the numerics the bench ran
    (manifest "int8_matmul", README INT8_MATMUL): weight-only dequantization in float32 (REFERENCE §2/§7),
    or bitsandbytes' LLM.int8 (MatMul8bitLt with threshold θ, as src/ref/llm_int8.ts states it) for the
    passes the engine runs that way. Two passes like the engine's: the prompt, then one more token on the
    prompt's KV cache (a column is an outlier over the rows of its own pass). Writes the logits of both as
    <DIR>/torch_logits{0,1}.f32 and, in an LLM.int8 mode, the float32 weight-only logits of the same passes
    as <DIR>/torch_f32_logits{0,1}.f32 (what LLM.int8 itself changes)."""
    import numpy as np
    d = args.compare
    m = json.load(open(os.path.join(d, "manifest.json")))
    dims = m["dims"]
    H, NH, KVH, HD, I, V = (dims[k] for k in ("hidden", "heads", "kvHeads", "headDim", "intermediate", "vocab"))
    eps, theta = dims["eps"], dims["ropeTheta"]
    mode = m.get("int8_matmul", "weight-only")
    # llm-int8-batched runs a lone sequence (one row a step, as here) as llm-int8-prefill does.
    if mode not in ("weight-only", "llm-int8", "llm-int8-prefill", "llm-int8-batched"):
        raise SystemExit(json.dumps({"error": f"unknown int8_matmul {mode}"}))
    threshold = float(m.get("threshold", 6.0))  # an f32 value (6.0): exact as a float
    G = NH // KVH
    try:
        import torch
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        backend = f"torch-{dev}"
        T_ = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(dev)
        to_np = lambda t: t.detach().cpu().numpy()
        exp, rsqrt, sig = torch.exp, torch.rsqrt, torch.sigmoid
        cat = lambda xs, axis=-1: torch.cat(xs, axis)
        where, rnd = torch.where, torch.round  # torch.round: halves to even, as WGSL round
        amax = lambda x, axis: x.amax(axis)
        anyof = lambda x, axis: x.any(axis)
        keep = lambda x, axis: x.sum(axis, keepdim=True)
        top = lambda x, axis: x.max(axis, keepdim=True).values
    except ImportError:
        backend = "numpy"
        T_ = lambda a: np.ascontiguousarray(a)
        to_np = lambda t: t
        exp, rsqrt = np.exp, lambda x: (1 / np.sqrt(x)).astype(np.float32)
        sig = lambda x: 1 / (1 + np.exp(-x))
        cat = lambda xs, axis=-1: np.concatenate(xs, axis)
        where, rnd = np.where, np.round  # np.round: halves to even
        amax = lambda x, axis: x.max(axis)
        anyof = lambda x, axis: x.any(axis)
        keep = lambda x, axis: x.sum(axis, keepdims=True)
        top = lambda x, axis: x.max(axis, keepdims=True)
    mm = lambda a, b: a @ b

    def load(name):
        f = m["files"][name]
        raw = np.fromfile(os.path.join(d, f["file"]), dtype={"i8": np.int8, "f32": np.float32, "bf16": np.uint16}[f["dtype"]])
        a = raw.reshape(f["shape"])
        if f["dtype"] == "bf16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        return a

    def linear(prefix):
        # The int8 values as float32, transposed for x @ W, and scale = SCB/127 (the tensor our kernels read).
        return dict(w=T_(load(prefix + ".weight").astype(np.float32).T.copy()), scale=T_(load(prefix + ".scale")))

    outlier_columns = []  # per LLM.int8 product: how many columns it kept in float32

    def lin(x, lw, int8):
        if not int8:
            return mm(x, lw["w"]) * lw["scale"]
        # LLM.int8: columns with any |x| ≥ θ stay float32; each row's other values are rounded to int8 on
        # their own absmax (that of the values below θ). The int8 products are integers, summed in float32
        # (exact below 2^24; the comparison tolerance is 1e-2).
        ax = abs(x)
        flags = anyof(ax >= threshold, 0)
        sca = amax(where(ax < threshold, ax, ax * 0), 1)
        inv = where(sca > 0, 127.0 / where(sca > 0, sca, sca + 1), sca * 0)  # float32 division
        q = where(flags[None, :], x * 0, rnd(x * inv[:, None]))
        out = mm(q, lw["w"]) * (sca / 127.0)[:, None] * lw["scale"]
        n = int(flags.sum())
        outlier_columns.append(n)
        if n:
            out = out + mm(x[:, flags], lw["w"][flags]) * lw["scale"]
        return out

    def rms(x, w):
        return x * rsqrt(keep(x * x, -1) / x.shape[-1] + eps) * w

    layers = []
    for l in range(dims["layers"]):
        p = f"L{l}"
        layers.append(dict(an=T_(load(p + ".attention_norm")), wqkv=linear(p + ".wqkv"), wo=linear(p + ".wo"),
                           fn=T_(load(p + ".ffn_norm")), w1=linear(p + ".w1"), w3=linear(p + ".w3"),
                           w2=linear(p + ".w2")))
    norm = T_(load("norm")); out = linear("output")
    rows = load("embed_rows")  # [n_ids, H] f32 from bf16, row i = embedding of ids[i]
    inv_freq = (1.0 / (np.float32(theta) ** (np.arange(0, HD, 2, dtype=np.float32) / np.float32(HD)))).astype(np.float32)

    def forward(ids, cache, int8, head_int8):
        """One pass of len(ids) tokens after the len(cache[0]) positions cache holds (appended to)."""
        T = len(ids)
        P0 = cache[0][0].shape[0] if cache[0] else 0
        x = T_(rows[[m["row_of_id"][str(i)] for i in ids]].astype(np.float32))
        pos = np.arange(P0, P0 + T, dtype=np.float32)
        fr = (pos[:, None] * inv_freq[None, :]).astype(np.float32)
        cos, sin = T_(np.cos(fr)), T_(np.sin(fr))  # [T, HD/2]; rotate_half pairs (i, i + HD/2)
        # query t sees keys 0 … P0 + t
        mask = T_(np.triu(np.full((T, P0 + T), -np.inf, dtype=np.float32), P0 + 1))

        def rope(t):  # [T, heads, HD]
            a, b = t[..., :HD // 2], t[..., HD // 2:]
            c, s = cos[:, None, :], sin[:, None, :]
            return cat([a * c - b * s, b * c + a * s])
        for l, lw in enumerate(layers):
            h = rms(x, lw["an"])
            qkv = lin(h, lw["wqkv"], int8).reshape(T, KVH, G + 2, HD)
            q = rope(qkv[:, :, :G].reshape(T, NH, HD)); k = rope(qkv[:, :, G]); v = qkv[:, :, G + 1]
            if cache[l]:
                k, v = cat([cache[l][0], k], 0), cat([cache[l][1], v], 0)
            cache[l] = (k, v)
            o = []
            for hh in range(NH):
                kv = hh // G
                sc = mm(q[:, hh], k[:, kv].T) / math.sqrt(HD) + mask
                e = exp(sc - top(sc, -1))
                o.append(mm(e / keep(e, -1), v[:, kv]))
            x = x + lin(cat(o), lw["wo"], int8)
            h = rms(x, lw["fn"])
            g = lin(h, lw["w1"], int8); u = lin(h, lw["w3"], int8)
            x = x + lin(g * sig(g) * u, lw["w2"], int8)
        return to_np(lin(rms(x[-1:], norm), out, head_int8))[0].astype(np.float32)

    def passes(prompt_int8, step_int8, name):
        cache = [None] * len(layers)
        # The prompt's last row reaches the head alone: LLM.int8 only where single rows are (llm-int8).
        forward(m["prompt_ids"], cache, prompt_int8, step_int8).tofile(os.path.join(d, f"{name}0.f32"))
        forward([m["next_id"]], cache, step_int8, step_int8).tofile(os.path.join(d, f"{name}1.f32"))

    passes(mode != "weight-only", mode == "llm-int8", "torch_logits")
    counts = list(outlier_columns)
    if mode != "weight-only":
        passes(False, False, "torch_f32_logits")

    def rel(ours, ref):
        a, b = to_np(ours).astype(np.float64), to_np(ref).astype(np.float64)
        return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))

    def products(taps, int8, head_int8, logits_file):
        """Every product of one pass on the engine's own inputs (its taps): ‖ours − ref‖/‖ref‖ per product,
        the worst over the layers. A product that accumulates into the residual is ours(after − before)."""
        def tap(name):
            f = taps[name]
            return T_(np.fromfile(os.path.join(d, f["file"]), dtype=np.float32).reshape(f["shape"]))
        worst = {}

        def note(name, ours, ref):
            worst[name] = max(worst.get(name, 0.0), rel(ours, ref))
        x = tap("lm.embeddings:-1")
        for l, lw in enumerate(layers):
            note("wqkv", tap(f"lm.qkv:{l}"), lin(rms(x, lw["an"]), lw["wqkv"], int8))
            h1 = tap(f"lm.attn_out:{l}")
            note("wo", h1 - x, lin(tap(f"lm.attn:{l}"), lw["wo"], int8))
            h = rms(h1, lw["fn"])
            g = lin(h, lw["w1"], int8); u = lin(h, lw["w3"], int8)
            act = tap(f"lm.act:{l}")
            note("w1·w3", act, g * sig(g) * u)
            x = tap(f"lm.layer:{l}")
            note("w2", x - h1, lin(act, lw["w2"], int8))
        ours = np.fromfile(os.path.join(d, logits_file), dtype=np.float32)
        note("head", T_(ours), lin(rms(x[-1:], norm), out, head_int8)[0])
        return worst

    info = {"backend": backend, "layers": dims["layers"], "tokens": len(m["prompt_ids"]), "int8_matmul": mode,
            "llm_int8_products": len(counts), "llm_int8_outlier_columns": sum(counts)}
    if "taps" in m:
        info["products"] = {
            "prompt": products(m["taps"]["0"], mode != "weight-only", mode == "llm-int8", "ours_logits0.f32"),
            "step": products(m["taps"]["1"], mode == "llm-int8", mode == "llm-int8", "ours_logits1.f32"),
        }
        info["products_max_rel_err"] = max(v for p in info["products"].values() for v in p.values())
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="the bench's tiny shapes")
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "torch_baseline.json"))
    ap.add_argument("--sections", default="copy,decode,batch,prefill,vit")
    ap.add_argument("--budget-s", type=float, default=300.0, help="skip remaining parts after this many seconds")
    ap.add_argument("--device", default="cuda", help="cpu only exercises the code paths (tests)")
    ap.add_argument("--compare", metavar="DIR", help="logits of the weights dumped in DIR (see module doc)")
    args = ap.parse_args()
    res = compare(args) if args.compare else perf(args)
    print(json.dumps(res, indent=1))
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
