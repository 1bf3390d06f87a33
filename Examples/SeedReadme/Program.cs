// The linformer-pytorch README example, line by line, in C#:
//
//   model = Linformer(input_size=262144, channels=64, dim_d=None, dim_k=128, dim_ff=128, dropout_ff=0.15,
//                     nhead=4, depth=2, dropout=0.1, activation="gelu", checkpoint_level="C0",
//                     parameter_sharing="layerwise", k_reduce_by_layer=0, full_attention=False,
//                     include_ff=True, w_o_intermediate_dim=None).cuda()
//   x = torch.randn(1, 262144, 64).cuda()
//   y = model(x)
//   print(y)  # (1, 262144, 64)
//
// The seed runs it with N = 262144 on a GPU. Pass N as the first argument (default 16384 for a quick CPU run).
using System.Diagnostics;
using Linformer.MLNet.Modules;
using TorchSharp;
using static TorchSharp.torch;

int n = args.Length > 0 && int.TryParse(args[0], out var parsed) ? parsed : 16384;
var device = cuda.is_available() ? CUDA : CPU;

var model = new LinformerEncoder(new LinformerEncoderOptions
{
    SequenceLength = n,            // input_size
    Channels = 64,                 // channels
    HeadWidth = null,              // dim_d
    ProjectedLength = 128,         // dim_k
    FeedForwardSize = 128,         // dim_ff
    FeedForwardDropout = 0.15,     // dropout_ff
    Heads = 4,                     // nhead
    Depth = 2,                     // depth
    Dropout = 0.1,                 // dropout
    Activation = Activation.Gelu,  // activation
    Sharing = ParameterSharing.Layerwise,      // parameter_sharing
    ProjectedLengthReductionPerLayer = 0,      // k_reduce_by_layer
    FullAttention = false,         // full_attention
    IncludeFeedForward = true,     // include_ff
    OutputIntermediateSize = null, // w_o_intermediate_dim
}).to(device);
model.eval();

var x = randn(1, n, 64, device: device);
var watch = Stopwatch.StartNew();
Tensor y;
using (no_grad()) y = model.forward(x);
watch.Stop();

Console.WriteLine($"device: {device.type}");
Console.WriteLine($"input:  ({string.Join(", ", x.shape)})");
Console.WriteLine($"output: ({string.Join(", ", y.shape)})");
Console.WriteLine($"parameters: {model.ParameterCount:N0}");
Console.WriteLine($"forward time: {watch.Elapsed.TotalMilliseconds:F0} ms");
Console.WriteLine($"peak working set: {Process.GetCurrentProcess().PeakWorkingSet64 / (1024 * 1024):N0} MiB");
