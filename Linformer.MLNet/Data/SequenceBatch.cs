using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Data;

/// <summary>A batch of rows in flat arrays: values (B·N·I floats or B·N ids) and masks (B·N, true = real).</summary>
internal sealed class SequenceBatch
{
    public SequenceBatch(InputBinding binding, int capacity)
    {
        Binding = binding;
        Capacity = capacity;
        if (binding.IsTokens) Ids = new long[capacity * binding.SequenceLength];
        else Values = new float[capacity * binding.ValuesPerRow];
        Mask = new bool[capacity * binding.SequenceLength];
    }

    public InputBinding Binding { get; }
    public int Capacity { get; }
    public int Count { get; set; }
    public float[]? Values { get; }
    public long[]? Ids { get; }
    public bool[] Mask { get; }

    /// <summary>Reads the reader's current row into slot <see cref="Count"/> and advances it.</summary>
    public void Add(SequenceReader reader)
    {
        int n = Binding.SequenceLength, v = Binding.ValuesPerRow;
        reader.Read(Values is null ? Span<float>.Empty : Values.AsSpan(Count * v, v),
                    Ids is null ? Span<long>.Empty : Ids.AsSpan(Count * n, n),
                    Mask.AsSpan(Count * n, n));
        Count++;
    }

    /// <summary>Replaces this batch's rows with rows <paramref name="rows"/> of <paramref name="source"/> (same binding).</summary>
    public void CopyRowsFrom(SequenceBatch source, ReadOnlySpan<int> rows)
    {
        int n = Binding.SequenceLength, v = Binding.ValuesPerRow;
        for (int i = 0; i < rows.Length; i++)
        {
            int r = rows[i];
            if (source.Values is not null) source.Values.AsSpan(r * v, v).CopyTo(Values.AsSpan(i * v, v));
            if (source.Ids is not null) source.Ids.AsSpan(r * n, n).CopyTo(Ids.AsSpan(i * n, n));
            source.Mask.AsSpan(r * n, n).CopyTo(Mask.AsSpan(i * n, n));
        }
        Count = rows.Length;
    }

    /// <summary>Tensors of the first <see cref="Count"/> rows on <paramref name="device"/>: input (B, N, I) or (B, N), mask (B, N) or null when nothing is padded.</summary>
    public (Tensor input, Tensor? mask) ToTensors(Device device)
    {
        int n = Binding.SequenceLength;
        Tensor input = Ids is not null
            ? tensor(Ids.AsSpan(0, Count * n).ToArray(), new long[] { Count, n }, int64)
            : tensor(Values!.AsSpan(0, Count * Binding.ValuesPerRow).ToArray(), new long[] { Count, n, Binding.Channels }, float32);
        bool padded = Array.IndexOf(Mask, false, 0, Count * n) >= 0;
        Tensor? mask = padded ? tensor(Mask.AsSpan(0, Count * n).ToArray(), new long[] { Count, n }, @bool) : null;
        if (device.type != DeviceType.CPU)
        {
            input = input.to(device);
            mask = mask?.to(device);
        }
        return (input, mask);
    }
}
