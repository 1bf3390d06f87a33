#!/usr/bin/env bash
# Publishes the scoring app twice for one runtime (framework-dependent): as it is (Linformer.MLNet.OnnxRuntime, no
# libtorch) and with TorchSharp-cpu (-p:WithLibTorch=true, what an app scoring with the TorchSharp transform ships),
# prints both sizes (Debug: the repository builds no Release; the difference is the few MB of our pdbs), fails if the first holds a libtorch file, and deletes both folders.
#   Examples/OnnxScoring/publish-sizes.sh [runtime identifier, default linux-x64]
set -euo pipefail
cd "$(dirname "$0")/../.."
rid=${1:-linux-x64}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
project=Examples/OnnxScoring/Scoring/OnnxScoring.Scoring.csproj
dotnet publish "$project" -c Debug -r "$rid" --self-contained false -o "$out/onnx" -p:WithLibTorch=false -nologo -v quiet
dotnet publish "$project" -c Debug -r "$rid" --self-contained false -o "$out/torch" -p:WithLibTorch=true -nologo -v quiet
libtorch=$(find "$out/onnx" -type f \( -iname '*torch*' -o -iname 'c10*' -o -iname 'libc10*' \) ! -name '*TorchSharp*' | sed "s|$out/onnx/||")
mb() { du -sm "$1" | cut -f1; }
echo "publish ($rid, framework-dependent): ONNX Runtime $(mb "$out/onnx") MB, TorchSharp-cpu $(mb "$out/torch") MB"
echo "largest files, ONNX Runtime app:"; find "$out/onnx" -type f -printf '%s %P\n' | sort -rn | head -5 | awk '{printf "  %6.1f MB %s\n", $1/1048576, $2}'
echo "largest files, TorchSharp app:"; find "$out/torch" -type f -printf '%s %P\n' | sort -rn | head -5 | awk '{printf "  %6.1f MB %s\n", $1/1048576, $2}'
if [ -n "$libtorch" ]; then echo "libtorch files in the ONNX Runtime app: $libtorch"; exit 1; fi
echo "no libtorch file in the ONNX Runtime app"
