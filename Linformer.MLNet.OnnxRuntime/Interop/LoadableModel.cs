// ML.NET finds LinformerOnnxTransformer's loader through the LoadableClassAttribute that the build weaves in for this
// marker (build/Linformer.MLNet.Weaving.targets, docs/persistence.md). The runtime instantiates that internal attribute
// only if this assembly may see Microsoft.ML.Core's internals. Every other ML.NET internal this package touches is
// reached through Linformer.MLNet's Interop/ (ModelContextBridge, OnnxConversionGuard); none is bound here.
using Linformer.MLNet.Interop;

[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Core")]
[assembly: MLNetLoadableModel(typeof(Linformer.MLNet.LinformerOnnxTransformer), "Linformer encoder (ONNX Runtime)", Linformer.MLNet.LinformerOnnxTransformer.LoaderSignature)]
