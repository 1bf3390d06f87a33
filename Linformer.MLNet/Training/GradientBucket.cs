using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Linformer.MLNet.Training;

/// <summary>
/// The exchange of a data-parallel run: all gradients flattened into one buffer (a bucket), so one
/// <see cref="IGradientReducer.AllReduceSum"/> per optimizer step averages every parameter, with the step's row
/// count and loss sum riding along at the end of the same buffer.
/// </summary>
internal sealed class GradientBucket
{
    private readonly IReadOnlyList<Parameter> parameters;
    private readonly IGradientReducer reducer;
    private readonly float[] buffer;
    private readonly int gradientLength;

    public GradientBucket(IReadOnlyList<Parameter> parameters, IGradientReducer reducer)
    {
        this.parameters = parameters;
        this.reducer = reducer;
        gradientLength = checked((int)parameters.Sum(p => p.numel()));
        buffer = new float[checked(gradientLength + 2)];
    }

    /// <summary>Floats exchanged per optimizer step.</summary>
    public int Length => buffer.Length;

    /// <summary>
    /// Turns every process's mean gradient over its <paramref name="rows"/> rows into the mean over all processes'
    /// rows (each process weighted by its rows, so unequal shares average exactly as one batch would), in place in
    /// every parameter's gradient; returns the rows and the loss sum (loss × rows) of the step over all processes.
    /// </summary>
    public (int Rows, double LossSum) Average(int rows, double lossSum)
    {
        using (var scope = NewDisposeScope())
        {
            var flat = cat(parameters.Select(p => p.grad is { } g ? g.detach().reshape(-1) : zeros(p.numel(), device: p.device)).ToList(), 0);
            using var weight = ((float)rows).ToScalar();
            flat = flat.to(ScalarType.Float32, CPU).mul(weight).contiguous();
            flat.data<float>().CopyTo(buffer);
        }
        buffer[gradientLength] = rows;
        buffer[gradientLength + 1] = (float)lossSum;
        reducer.AllReduceSum(buffer);
        int total = checked((int)Math.Round(buffer[gradientLength]));
        if (total <= 0)
            throw new InvalidOperationException($"The processes of the data-parallel run hold no rows for this step (rank {reducer.Rank} of {reducer.ProcessCount}).");
        float scale = 1f / total;
        for (int i = 0; i < gradientLength; i++) buffer[i] *= scale;
        CopyBack();
        return (total, buffer[gradientLength + 1]);
    }

    /// <summary>Gives every process rank 0's parameters (a sum in which every other rank adds zeros).</summary>
    public void BroadcastParametersFromRankZero()
    {
        if (reducer.Rank == 0)
        {
            using var scope = NewDisposeScope();
            var flat = cat(parameters.Select(p => p.detach().reshape(-1)).ToList(), 0).to(ScalarType.Float32, CPU).contiguous();
            flat.data<float>().CopyTo(buffer);
        }
        else Array.Clear(buffer);
        buffer[gradientLength] = buffer[gradientLength + 1] = 0;
        reducer.AllReduceSum(buffer);
        using var noGrad = no_grad();
        using var scope2 = NewDisposeScope();
        using var all = tensor(buffer);
        long offset = 0;
        foreach (var p in parameters)
        {
            long n = p.numel();
            p.copy_(all.narrow(0, offset, n).view_as(p));
            offset += n;
        }
    }

    private void CopyBack()
    {
        using var scope = NewDisposeScope();
        using var all = tensor(buffer);
        long offset = 0;
        foreach (var p in parameters)
        {
            long n = p.numel();
            var slice = all.narrow(0, offset, n).view_as(p);
            if (p.grad is { } g) g.copy_(slice);
            else p.grad = slice.to(p.dtype, p.device).clone();   // a process that had no rows this step
            offset += n;
        }
    }
}
