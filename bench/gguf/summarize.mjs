// Collects run.sh's per-run JSON files into bench/results/gguf-llamacpp.{json,md}.
import fs from "node:fs";
import os from "node:os";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const read = (f) => JSON.parse(fs.readFileSync(`${args.work}/${f}`, "utf8"));
const cpu = (fs.readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/) || [])[1] || os.cpus()[0]?.model;
const machine = `${os.hostname()}: ${cpu}, ${os.cpus().length} logical CPUs visible, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}`;

const rows = [];
const generations = [];
for (const m of args.models.split(/\s+/).filter(Boolean)) {
    const reference = read(`${m}.reference.qs.json`);
    for (const spec of args.types.split(/\s+/).filter(Boolean)) {
        const [type, flag] = spec.split(":");
        const tag = flag ? `${type}-imatrix` : type;
        const exp = read(`${m}.${tag}.export.json`);
        const ours = read(`${m}.${tag}.qs.json`);
        const theirs = read(`${m}.${tag}.llamacpp.json`);
        rows.push({
            model: m,
            type,
            imatrix: exp.imatrix,
            quantsharp_ppl: ours.perplexity,
            llamacpp_ppl: theirs.perplexity,
            rel_diff_percent: 100 * (theirs.perplexity - ours.perplexity) / ours.perplexity,
            bf16_reference_ppl: reference.perplexity,
            file_bytes: exp.bytes,
            bits_per_weight: exp.bits_per_weight,
            tensor_types: exp.tensor_types,
            llamacpp_zero_probabilities: theirs.zero_probabilities,
        });
    }
    const g = read(`${m}.q8_0.generate.llamacpp.json`);
    generations.push({
        model: m, type: "q8_0", prompt_ids: g.prompt_ids, quantsharp_ids: g.quantsharp_generated_ids,
        llamacpp_ids: g.generated_ids, matching_prefix: g.matching_prefix, identical: g.generation_matches,
        llamacpp_text: g.generated_text,
    });
}
const llamacppInfo = read(`${args.models.split(/\s+/)[0]}.q8_0.llamacpp.json`);
const result = {
    machine,
    date: new Date().toISOString(),
    protocol: `eval_a.txt, QuantSharp's token ids (no BOS), first ${args.windows} non-overlapping windows of ${args["seq-len"]}, mean NLL of tokens 2..n`,
    quantsharp: "GGUF loaded back by QuantSharp (dequantized to fp32, llama q/k permutation undone), fp32 CPU",
    llamacpp: `${llamacppInfo.engine} ${llamacppInfo.node_llama_cpp} (llama.cpp binaries ${llamacppInfo.llama_cpp_release}), CPU, ${llamacppInfo.threads} threads, KV cache ${llamacppInfo.kv_cache}, flash attention off`,
    rows,
    generations,
};
fs.writeFileSync(`${args.out}.json`, JSON.stringify(result, null, 2) + "\n");

const fmt = (x, d = 4) => x.toFixed(d);
let md = `# GGUF export vs real llama.cpp\n\n`;
md += `Machine: ${machine}. Date: ${result.date}.\n\n`;
md += `Protocol: ${result.protocol}. QuantSharp: ${result.quantsharp}. llama.cpp: ${result.llamacpp}.\n`;
md += `Both score the same GGUF file written by \`quantsharp export-gguf\`; "Δ" is llama.cpp relative to QuantSharp. `;
md += `bits/weight counts every tensor (embeddings and norms included). Rows that are not whole 256-value super-blocks `;
md += `get llama.cpp's fallback (Q4_K → Q5_0), shown in the tensor-type column. imatrix: 32 windows of 512 tokens of calib.txt.\n\n`;
md += `| model | type | imatrix | QuantSharp ppl | llama.cpp ppl | Δ % | bf16 ppl | file bytes | bits/weight | tensor types |\n`;
md += `|---|---|---|---:|---:|---:|---:|---:|---:|---|\n`;
for (const r of rows) {
    const tt = Object.entries(r.tensor_types).map(([k, v]) => `${v}×${k}`).join(", ");
    md += `| ${r.model} | ${r.type} | ${r.imatrix ? "yes" : "no"} | ${fmt(r.quantsharp_ppl)} | ${fmt(r.llamacpp_ppl)} | ${r.rel_diff_percent >= 0 ? "+" : ""}${fmt(r.rel_diff_percent, 3)} | ${fmt(r.bf16_reference_ppl)} | ${r.file_bytes.toLocaleString("en-US")} | ${fmt(r.bits_per_weight, 3)} | ${tt} |\n`;
}
const worst = Math.max(...rows.map((r) => Math.abs(r.rel_diff_percent)));
md += `\nLargest |Δ|: ${fmt(worst, 3)} % (target: within 0.5 %).\n\n`;
md += `## Greedy generation, Q8_0, 32 tokens\n\n| model | identical | matching prefix | QuantSharp ids | llama.cpp ids |\n|---|---|---:|---|---|\n`;
for (const g of generations)
    md += `| ${g.model} | ${g.identical ? "yes" : "no"} | ${g.matching_prefix}/${g.quantsharp_ids.length} | ${g.quantsharp_ids.join(" ")} | ${g.llamacpp_ids.join(" ")} |\n`;
md += `\nReproduce: \`(cd bench/gguf && npm ci) && bench/gguf/run.sh\`.\n`;
fs.writeFileSync(`${args.out}.md`, md);
console.log(md);
