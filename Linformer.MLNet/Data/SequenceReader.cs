using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Data;

/// <summary>
/// Reads one row's sequence (and mask) from a row into caller-owned arrays, validating values:
/// no NaN or ∞ in float input, token ids inside the vocabulary, no missing keys.
/// </summary>
internal sealed class SequenceReader
{
    private readonly InputBinding binding;
    private readonly DataViewRow row;
    private readonly int vocabulary;
    private readonly int? paddingTokenId;
    private readonly ValueGetter<VBuffer<float>>? floats;
    private readonly ValueGetter<VBuffer<int>>? ints;
    private readonly ValueGetter<VBuffer<long>>? longs;
    private readonly ValueGetter<VBuffer<uint>>? keys;
    private readonly ValueGetter<VBuffer<bool>>? maskGetter;
    private VBuffer<float> floatBuffer;
    private VBuffer<int> intBuffer;
    private VBuffer<long> longBuffer;
    private VBuffer<uint> keyBuffer;
    private VBuffer<bool> maskBuffer;

    public SequenceReader(InputBinding binding, DataViewRow row, int vocabulary, int? paddingTokenId)
    {
        this.binding = binding;
        this.row = row;
        this.vocabulary = vocabulary;
        this.paddingTokenId = paddingTokenId;
        var col = row.Schema[binding.Column];
        switch (binding.Kind)
        {
            case SequenceItemKind.Single: floats = row.GetGetter<VBuffer<float>>(col); break;
            case SequenceItemKind.Int32: ints = row.GetGetter<VBuffer<int>>(col); break;
            case SequenceItemKind.Int64: longs = row.GetGetter<VBuffer<long>>(col); break;
            default: keys = row.GetGetter<VBuffer<uint>>(col); break;
        }
        if (binding.MaskColumn is not null) maskGetter = row.GetGetter<VBuffer<bool>>(row.Schema[binding.MaskColumn]);
    }

    /// <summary>Reads the current row: floats into <paramref name="floatValues"/> (N·I) or ids into <paramref name="ids"/> (N); the mask (N, true = real) into <paramref name="mask"/>.</summary>
    public void Read(Span<float> floatValues, Span<long> ids, Span<bool> mask)
    {
        if (floats is not null)
        {
            floats(ref floatBuffer);
            floatBuffer.CopyTo(floatValues);
            for (int i = 0; i < floatValues.Length; i++)
                if (!float.IsFinite(floatValues[i]))
                    throw new InvalidOperationException(
                        string.Create(CultureInfo.InvariantCulture, $"Input column '{binding.Column}' holds {floatValues[i]} at index {i} of row {row.Position}; Linformer needs finite values (replace or drop missing values first)."));
        }
        else
        {
            int n = binding.SequenceLength;
            if (ints is not null) { ints(ref intBuffer); var dense = intBuffer.DenseValues().GetEnumerator(); for (int i = 0; i < n && dense.MoveNext(); i++) ids[i] = dense.Current; }
            else if (longs is not null) { longs(ref longBuffer); var dense = longBuffer.DenseValues().GetEnumerator(); for (int i = 0; i < n && dense.MoveNext(); i++) ids[i] = dense.Current; }
            else
            {
                keys!(ref keyBuffer);
                var dense = keyBuffer.DenseValues().GetEnumerator();
                for (int i = 0; i < n && dense.MoveNext(); i++)
                {
                    if (dense.Current == 0)
                        throw new InvalidOperationException($"Input column '{binding.Column}' has a missing key at index {i} of row {row.Position}; map missing tokens to a padding id.");
                    ids[i] = dense.Current - 1L;   // keys are 1-based; 0 means missing
                }
            }
            for (int i = 0; i < n; i++)
                if (ids[i] < 0 || ids[i] >= vocabulary)
                    throw new ArgumentOutOfRangeException(binding.Column,
                        string.Create(CultureInfo.InvariantCulture, $"Input column '{binding.Column}' has token id {ids[i]} at index {i} of row {row.Position}, outside the vocabulary [0, {vocabulary})."));
        }

        if (maskGetter is not null)
        {
            maskGetter(ref maskBuffer);
            maskBuffer.CopyTo(mask);
        }
        else if (paddingTokenId is { } pad && binding.IsTokens)
            for (int i = 0; i < mask.Length; i++) mask[i] = ids[i] != pad;
        else mask.Fill(true);
        if (!mask.Contains(true))
            throw new InvalidOperationException($"Row {row.Position} has no real position (its mask is all padding); every row needs at least one.");
    }
}
