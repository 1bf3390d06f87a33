using Linformer.MLNet.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Data;

/// <summary>What the encoder computes from the supervised head, per row.</summary>
internal enum HeadOutput
{
    /// <summary>Nothing.</summary>
    None,
    /// <summary>L class probabilities (softmax of the logits): a Key label's head, and every classification head of models saved before 1.3.</summary>
    Probabilities,
    /// <summary>Two floats: the log-odds log(p₁/p₀) (logit₁ − logit₀) and p₁ = sigmoid of it: a Boolean label's head.</summary>
    LogOddsAndProbability,
    /// <summary>One float: the regression value.</summary>
    Value,
}

/// <summary>
/// Runs the network on batches for Transform and PredictionEngine: eval mode, no gradients, one forward per batch.
/// Thread-safe: the forward pass reads the weights only and keeps no per-call state in the network (gradient mode
/// and dispose scopes are per thread in TorchSharp), so any number of threads may encode at once. It also owns the
/// network's lifetime: <see cref="Dispose"/> waits for batches in flight, then frees the weights; a later
/// <see cref="Encode"/> throws <see cref="ObjectDisposedException"/> instead of touching freed native memory.
/// </summary>
internal sealed class BatchEncoder : ISequenceEncoder, IDisposable
{
    private readonly Type owner;
    private readonly LinformerNetwork network;
    private readonly Device device;
    private readonly object gate = new();
    private int inFlight;
    private bool disposed;

    public BatchEncoder(Type owner, LinformerNetwork network, Device device, LinformerOutputKind outputKind, HeadOutput headOutput)
    {
        this.owner = owner;
        this.network = network;
        this.device = device;
        OutputKind = outputKind;
        HeadOutput = network.Spec.Head == HeadKind.None ? HeadOutput.None : headOutput;
        network.eval();
    }

    public LinformerOutputKind OutputKind { get; }

    /// <summary>The rows of the network's token embedding: the input's ids and the reserved tokens.</summary>
    public TokenLayout Layout => TokenLayout.Of(network.Spec);
    public HeadOutput HeadOutput { get; }

    /// <summary>Whether the network has been (or is being) released.</summary>
    public bool IsDisposed => Volatile.Read(ref disposed);

    /// <summary>Floats per row of the output column.</summary>
    public int FeatureSize => OutputKind == LinformerOutputKind.Sequence
        ? network.Spec.Encoder.SequenceLength * network.Spec.Width
        : network.Spec.Width;

    /// <summary>Floats per row of the head's output (see <see cref="HeadOutput"/>).</summary>
    public int HeadSize => HeadOutput switch
    {
        HeadOutput.Probabilities => network.Spec.Classes,
        HeadOutput.LogOddsAndProbability => 2,
        HeadOutput.Value => 1,
        _ => 0,
    };

    /// <summary>Throws <see cref="ObjectDisposedException"/> once the transformer that owns the network was disposed.</summary>
    public void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(IsDisposed, owner);

    /// <summary>
    /// Runs <paramref name="action"/> with the network guaranteed alive (Dispose waits for it), or throws
    /// <see cref="ObjectDisposedException"/> when the network is already released.
    /// </summary>
    public T WhileAlive<T>(Func<T> action)
    {
        lock (gate)
        {
            ThrowIfDisposed();
            inFlight++;
        }
        try { return action(); }
        finally
        {
            lock (gate)
            {
                if (--inFlight == 0) Monitor.PulseAll(gate);
            }
        }
    }

    /// <summary>Runs <paramref name="action"/> with the network guaranteed alive; see <see cref="WhileAlive{T}(Func{T})"/>.</summary>
    public void WhileAlive(Action action) => WhileAlive(() => { action(); return true; });

    /// <summary>Encodes the batch into <paramref name="features"/> (B·FeatureSize) and, if the head is emitted, <paramref name="head"/> (B·HeadSize).</summary>
    /// <exception cref="ObjectDisposedException">The transformer was disposed.</exception>
    /// <exception cref="InsufficientMemoryException">libtorch could not allocate the batch's activations.</exception>
    public void Encode(SequenceBatch batch, float[] features, float[]? head)
    {
        if (batch.Count == 0) return;
        WhileAlive(() =>
        {
            try
            {
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                var (input, mask) = batch.ToTensors(device);
                var encoded = network.forward(input, mask);                                   // (B, N, C)
                var pooled = LinformerNetwork.Pool(encoded, mask, OutputKind);                 // (B, C) or (B, N·C)
                CopyOut(pooled, features);
                if (HeadOutput != HeadOutput.None && head is not null)
                    CopyOut(HeadValues(network.Head(encoded, mask)), head);                   // logits (B, L) or values (B)
            }
            catch (Exception ex) when (AllocationFailure.Is(ex))
            {
                throw AllocationFailure.Wrap(ex, $"Encoding a batch of {batch.Count} sequence(s)", batch.Binding.SequenceLength, batch.Capacity, device.ToString());
            }
        });
    }

    /// <summary>
    /// Encodes a batch of windows (<see cref="WindowedEncoder"/>): each window pooled by <see cref="OutputKind"/> into
    /// <paramref name="pooled"/> (B·C) and, when given, mean-pooled into <paramref name="meanPooled"/> (B·C; the head
    /// reads the mean over a row's windows).
    /// </summary>
    public void EncodeWindows(SequenceBatch windows, float[] pooled, float[]? meanPooled)
    {
        if (windows.Count == 0) return;
        WhileAlive(() =>
        {
            try
            {
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                var (input, mask) = windows.ToTensors(device);
                var encoded = network.forward(input, mask);                                   // (B, N, C)
                CopyOut(LinformerNetwork.Pool(encoded, mask, OutputKind), pooled);             // (B, C)
                if (meanPooled is not null) CopyOut(LinformerNetwork.Pool(encoded, mask, LinformerOutputKind.MeanPooled), meanPooled);
            }
            catch (Exception ex) when (AllocationFailure.Is(ex))
            {
                throw AllocationFailure.Wrap(ex, $"Encoding a batch of {windows.Count} window(s)", windows.Binding.SequenceLength, windows.Capacity, device.ToString());
            }
        });
    }

    /// <summary>The head's outputs (<see cref="HeadOutput"/>, HeadSize floats per row) for <paramref name="count"/> mean-pooled encodings (count·C floats).</summary>
    public void EncodeHead(float[] meanPooled, int count, float[] head)
    {
        if (count == 0 || HeadOutput == HeadOutput.None) return;
        WhileAlive(() =>
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            int width = network.Spec.Width;
            var x = tensor(meanPooled.AsSpan(0, count * width).ToArray(), new long[] { count, 1, width }, float32);   // (B, 1, C): a one-position sequence
            if (device.type != DeviceType.CPU) x = x.to(device);
            CopyOut(HeadValues(network.Head(x, null)), head);                                // the mean over one position is the encoding itself
        });
    }

    /// <summary>What <see cref="HeadOutput"/> asks for, from the head's logits (B, L) or regression values (B).</summary>
    private Tensor HeadValues(Tensor y)
    {
        if (HeadOutput == HeadOutput.Probabilities) return y.softmax(-1);                 // (B, L)
        if (HeadOutput != HeadOutput.LogOddsAndProbability) return y;
        var logOdds = y.select(1, 1) - y.select(1, 0);                                     // (B): log(p1 / p0)
        return stack(new[] { logOdds, logOdds.sigmoid() }, 1);                             // (B, 2)
    }

    private static void CopyOut(Tensor t, float[] destination)
    {
        var cpu = t.to_type(float32).cpu().contiguous();
        cpu.data<float>().CopyTo(destination.AsSpan(0, (int)cpu.numel()));
    }

    /// <summary>Marks the encoder disposed, waits for the batches in flight on other threads, then frees the network.</summary>
    public void Dispose()
    {
        lock (gate)
        {
            if (disposed) return;
            Volatile.Write(ref disposed, true);
            while (inFlight > 0) Monitor.Wait(gate);
        }
        network.Dispose();
    }
}
