using static TorchSharp.torch;

namespace Linformer.MLNet.Tests.Modules;

/// <summary>Tensor comparisons that report the largest difference and where it is.</summary>
internal static class TensorAssert
{
    public static double MaxAbsDiff(Tensor expected, Tensor actual)
    {
        using var scope = NewDisposeScope();
        Assert.IsTrue(expected.shape.SequenceEqual(actual.shape),
            $"shape [{string.Join(", ", actual.shape)}] != expected [{string.Join(", ", expected.shape)}]");
        return (expected.to_type(float64) - actual.to_type(float64)).abs().max().item<double>();
    }

    public static void Close(Tensor expected, Tensor actual, double tolerance, string what)
    {
        using var scope = NewDisposeScope();
        double diff = MaxAbsDiff(expected, actual);
        if (diff <= tolerance) return;
        var flat = (expected.to_type(float64) - actual.to_type(float64)).abs().flatten();
        long at = flat.argmax().item<long>();
        var index = Unravel(at, expected.shape);
        Assert.Fail($"{what}: max |difference| = {diff:E3} > {tolerance:E1} at [{string.Join(", ", index)}] " +
                    $"(expected {expected.flatten()[at].to_type(float64).item<double>():G9}, got {actual.flatten()[at].to_type(float64).item<double>():G9})");
    }

    public static void Equal(Tensor expected, Tensor actual, string what) => Close(expected, actual, 0.0, what);

    private static long[] Unravel(long flat, long[] shape)
    {
        var index = new long[shape.Length];
        for (int i = shape.Length - 1; i >= 0; i--) { index[i] = flat % shape[i]; flat /= shape[i]; }
        return index;
    }
}
