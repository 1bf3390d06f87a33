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

    /// <summary>Bytes one row takes in a batch: its values (N·I floats) or ids (N longs), and its mask (N).</summary>
    public static long BytesPerRow(InputBinding binding)
        => (binding.IsTokens ? (long)binding.SequenceLength * sizeof(long) : (long)binding.ValuesPerRow * sizeof(float)) + binding.SequenceLength;

    /// <summary>Reads the reader's current row into slot <see cref="Count"/> and advances it.</summary>
    public void Add(SequenceReader reader)
    {
        Read(reader, Count);
        Count++;
    }

    /// <summary>Reads the reader's current row into slot <paramref name="slot"/> (leaves <see cref="Count"/> alone).</summary>
    public void Read(SequenceReader reader, int slot)
    {
        int n = Binding.SequenceLength, v = Binding.ValuesPerRow;
        reader.Read(Values is null ? Span<float>.Empty : Values.AsSpan(slot * v, v),
                    Ids is null ? Span<long>.Empty : Ids.AsSpan(slot * n, n),
                    Mask.AsSpan(slot * n, n));
    }

    /// <summary>Copies row <paramref name="from"/> of <paramref name="source"/> (same binding) into slot <paramref name="to"/>.</summary>
    public void CopyRow(SequenceBatch source, int from, int to)
    {
        int n = Binding.SequenceLength, v = Binding.ValuesPerRow;
        if (source.Values is not null) source.Values.AsSpan(from * v, v).CopyTo(Values.AsSpan(to * v, v));
        if (source.Ids is not null) source.Ids.AsSpan(from * n, n).CopyTo(Ids.AsSpan(to * n, n));
        source.Mask.AsSpan(from * n, n).CopyTo(Mask.AsSpan(to * n, n));
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
