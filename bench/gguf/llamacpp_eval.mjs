// Scores a GGUF file with real llama.cpp (node-llama-cpp's prebuilt binaries, CPU) on QuantSharp's token ids:
// non-overlapping windows of seq_len tokens, no BOS, NLL of tokens 2..n of each window from the logits llama.cpp
// produces for every position (LlamaContextSequence.controlledEvaluate with generateNext.probabilities on each
// input token; with the default greedy sampler the probabilities are the softmax of the raw logits).
// Optionally continues a prompt greedily for --generate N tokens, from prompt ids QuantSharp wrote (--prompt-json).
// Prints one JSON object.
//
// usage: node llamacpp_eval.mjs --model F.gguf --tokens eval_a.tokens.safetensors [--seq-len 512] [--windows 8]
//                               [--prompt-json gen.json --generate 32] [--threads 2]
import fs from "node:fs";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

function parseArgs(argv) {
    const args = { seqLen: 512, windows: 8, threads: 2, generate: 0 };
    for (let i = 2; i < argv.length; i += 2) {
        const key = argv[i].replace(/^--/, "");
        const value = argv[i + 1];
        switch (key) {
            case "model": args.model = value; break;
            case "tokens": args.tokens = value; break;
            case "seq-len": args.seqLen = Number(value); break;
            case "windows": args.windows = Number(value); break;
            case "threads": args.threads = Number(value); break;
            case "prompt-json": args.promptJson = value; break;
            case "generate": args.generate = Number(value); break;
            default: throw new Error(`unknown option --${key}`);
        }
    }
    if (!args.model) throw new Error("--model is required");
    return args;
}

// The golden ids are a safetensors file with one I32 tensor "input_ids"; read it without extra packages.
function readTokenIds(path) {
    const buf = fs.readFileSync(path);
    const headerLen = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString("utf8"));
    const entry = header.input_ids;
    if (!entry || entry.dtype !== "I32") throw new Error(`${path}: expected an I32 tensor 'input_ids'`);
    const [begin, end] = entry.data_offsets;
    const start = 8 + headerLen + begin;
    const ids = new Int32Array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + 8 + headerLen + end));
    return Array.from(ids);
}

const args = parseArgs(process.argv);
const llama = await getLlama({ gpu: false, build: "never", usePrebuiltBinaries: true, progressLogs: false, logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: args.model, gpuLayers: 0 });
const context = await model.createContext({
    contextSize: args.seqLen,
    batchSize: args.seqLen,
    sequences: 1,
    threads: args.threads,
    flashAttention: false,
    // F32 KV cache: keep llama.cpp's attention inputs unrounded so the comparison is about the weights.
    experimentalKvCacheKeyType: "F32",
    experimentalKvCacheValueType: "F32",
});
const sequence = context.getSequence();
const result = {
    engine: "llama.cpp via node-llama-cpp",
    node_llama_cpp: JSON.parse(fs.readFileSync(new URL("./node_modules/node-llama-cpp/package.json", import.meta.url))).version,
    llama_cpp_release: JSON.parse(fs.readFileSync(new URL("./node_modules/node-llama-cpp/llama/binariesGithubRelease.json", import.meta.url))).release,
    model: args.model,
    kv_cache: "f32",
    threads: args.threads,
};

if (args.tokens && args.windows > 0) {
    const ids = readTokenIds(args.tokens);
    const windows = Math.min(args.windows, Math.floor(ids.length / args.seqLen));
    const started = Date.now();
    let nll = 0;
    let counted = 0;
    let zeroProbabilities = 0;
    for (let w = 0; w < windows; w++) {
        await sequence.clearHistory();
        const tokens = ids.slice(w * args.seqLen, (w + 1) * args.seqLen);
        const input = tokens.map((t, i) => (i < tokens.length - 1 ? [t, { generateNext: { probabilities: true } }] : t));
        const out = await sequence.controlledEvaluate(input);
        for (let i = 0; i < tokens.length - 1; i++) {
            const p = out[i]?.next?.probabilities?.get(tokens[i + 1]);
            if (p === undefined) throw new Error(`window ${w} position ${i}: no probabilities returned`);
            if (p <= 0) zeroProbabilities++;
            nll -= Math.log(Math.max(p, 1e-45));
            counted++;
        }
    }
    result.windows = windows;
    result.seq_len = args.seqLen;
    result.predicted_tokens = counted;
    result.nll = nll;
    result.perplexity = Math.exp(nll / counted);
    result.zero_probabilities = zeroProbabilities;
    result.scoring_seconds = (Date.now() - started) / 1000;
}

if (args.promptJson && args.generate > 0) {
    const prompt = JSON.parse(fs.readFileSync(args.promptJson, "utf8"));
    await sequence.clearHistory();
    const generated = [];
    // Greedy: temperature 0, no repeat penalty; stop at end-of-generation like QuantSharp stops at EOS.
    for await (const token of sequence.evaluate(prompt.prompt_ids, { temperature: 0 })) {
        generated.push(token);
        if (model.isEogToken?.(token) || generated.length >= args.generate) break;
    }
    result.prompt_ids = prompt.prompt_ids;
    result.generated_ids = generated;
    result.generated_text = model.detokenize(generated);
    if (prompt.generated_ids) {
        const ours = prompt.generated_ids;
        let same = 0;
        while (same < Math.min(ours.length, generated.length) && ours[same] === generated[same]) same++;
        result.quantsharp_generated_ids = ours;
        result.matching_prefix = same;
        result.generation_matches = same === ours.length && same === generated.length;
    }
}

console.log(JSON.stringify(result, null, 2));
await context.dispose();
await model.dispose();
await llama.dispose();
