# Sourced by the session-5 scripts that run Intel Neural Compressor's GPTQ beside ours (W must be set first): the
# bundle's CLI, INC's source under /root, tiny-llama unpacked, and `inc BITS SEED [DUMP]` (one INC run, its JSON line).
source bench/gpu/env.sh
[ -x "$QS" ] || { echo "bundle not unpacked: run stage 1 first on a warm machine"; exit 3; }
[ -d /root/neural_compressor ] || tar -C /root -xzf .gpu/inc.tar.gz
M=.gpu/models/tiny-llama; D=testdata/data
[ -f $M/config.json ] || python3 bench/gpu/pack_model.py unpack .gpu/tl $M
rm -rf $W; mkdir -p $W/inc
export INC_SRC=/root EVAL=$PWD/$D/eval_a.txt CALIB=$PWD/$D/calib.txt
inc() { python3 bench/gpu/inc_beside.py run $M "$@" 2>$W/inc/err_$1_$2.txt | grep '"who"' || tail -3 $W/inc/err_$1_$2.txt; }
pick() { grep -E "perplexity( after:)? [0-9.]+( |$)|rror" | tail -1; }   # the result line, or the error
