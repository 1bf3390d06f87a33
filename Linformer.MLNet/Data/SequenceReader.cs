using System.Globalization;
using Linformer.MLNet.Model;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Data;

/// <summary>
/// Reads one row's sequence (and mask) from a row into caller-owned arrays, validating values: no NaN or ∞ in float
/// input, token ids inside the vocabulary, no missing keys unless the model reserves an unknown token (then a missing
/// key, Key value 0, reads as <see cref="TokenLayout.UnknownId"/>). Variable-length rows are padded to N (padding
/// masked out; token padding reads as the reserved padding id) or cut to N by the binding's truncation rule, or read
/// whole and handed out as windows of N (<see cref="LoadWindows"/>, <see cref="ReadWindow"/>). A Text row is first
/// turned into ids by the binding's tokenizer; a text without tokens reads as one unknown token when the model
/// reserves one.
/// </summary>
internal sealed class SequenceReader
{
    private readonly InputBinding binding;
    private readonly DataViewRow row;
    private readonly TokenLayout layout;
    private readonly int? paddingTokenId;
    private readonly ValueGetter<VBuffer<float>>? floats;
    private readonly ValueGetter<VBuffer<int>>? ints;
    private readonly ValueGetter<VBuffer<long>>? longs;
    private readonly ValueGetter<VBuffer<uint>>? keys;
    private readonly ValueGetter<VBuffer<bool>>? maskGetter;
    private readonly ValueGetter<ReadOnlyMemory<char>>? text;
    private ReadOnlyMemory<char> textBuffer;
    private VBuffer<float> floatBuffer;
    private VBuffer<int> intBuffer;
    private VBuffer<long> longBuffer;
    private VBuffer<uint> keyBuffer;
    private VBuffer<bool> maskBuffer;
    // Variable-length rows: the whole row, before padding or truncation.
    private float[] rowFloats = Array.Empty<float>();
    private long[] rowIds = Array.Empty<long>();
    private bool[] rowMask = Array.Empty<bool>();
    private int loadedPositions;   // positions of the row LoadWindows read

    public SequenceReader(InputBinding binding, DataViewRow row, TokenLayout layout, int? paddingTokenId)
    {
        this.binding = binding;
        this.row = row;
        this.layout = layout;
        this.paddingTokenId = paddingTokenId;
        var col = row.Schema[binding.Column];
        switch (binding.Kind)
        {
            case SequenceItemKind.Single: floats = row.GetGetter<VBuffer<float>>(col); break;
            case SequenceItemKind.Int32: ints = row.GetGetter<VBuffer<int>>(col); break;
            case SequenceItemKind.Int64: longs = row.GetGetter<VBuffer<long>>(col); break;
            case SequenceItemKind.Text: text = row.GetGetter<ReadOnlyMemory<char>>(col); break;
            default: keys = row.GetGetter<VBuffer<uint>>(col); break;
        }
        if (binding.MaskColumn is not null) maskGetter = row.GetGetter<VBuffer<bool>>(row.Schema[binding.MaskColumn]);
    }

    /// <summary>Reads the current row: floats into <paramref name="floatValues"/> (N·I) or ids into <paramref name="ids"/> (N); the mask (N, true = real) into <paramref name="mask"/>.</summary>
    public void Read(Span<float> floatValues, Span<long> ids, Span<bool> mask)
    {
        if (binding.VariableLength) ReadVariable(floatValues, ids, mask);
        else ReadFixed(floatValues, ids, mask);
        if (!mask.Contains(true)) throw NoRealPosition();
    }

    private void ReadFixed(Span<float> floatValues, Span<long> ids, Span<bool> mask)
    {
        if (floats is not null)
        {
            floats(ref floatBuffer);
            floatBuffer.CopyTo(floatValues);
            CheckFinite(floatValues);
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
                for (int i = 0; i < n && dense.MoveNext(); i++) ids[i] = KeyToId(dense.Current, i);
            }
            if (keys is null) CheckIds(ids);
        }

        if (maskGetter is not null)
        {
            maskGetter(ref maskBuffer);
            maskBuffer.CopyTo(mask);
        }
        else if (paddingTokenId is { } pad && binding.IsTokens)
            for (int i = 0; i < mask.Length; i++) mask[i] = ids[i] != pad;
        else mask.Fill(true);
    }

    private void ReadVariable(Span<float> floatValues, Span<long> ids, Span<bool> mask)
    {
        int positions = LoadRow();
        // Position i of the result is position i (i < head) or offset + i of the row; positions kept .. N−1 are padding.
        int n = binding.SequenceLength, kept = Math.Min(positions, n);
        int head = positions <= n ? positions : binding.Truncation switch
        {
            LinformerTruncation.KeepStart => n,
            LinformerTruncation.KeepEnd => 0,
            _ => n / 4,
        };
        Fill(floatValues, ids, mask, kept, head, positions - kept);
    }

    /// <summary>
    /// Reads the current (variable-length) row whole and returns how many windows of N positions cover it: ⌈L/N⌉, at
    /// least 1. <see cref="ReadWindow"/> then gives each window.
    /// </summary>
    public int LoadWindows()
    {
        int positions = LoadRow();
        loadedPositions = positions;
        int n = binding.SequenceLength;
        return Math.Max(1, (int)(((long)positions + n - 1) / n));
    }

    /// <summary>
    /// Window <paramref name="window"/> of the row <see cref="LoadWindows"/> read: its positions w·N … w·N + N − 1, the
    /// last window padded and masked. Returns whether the window has a real position.
    /// </summary>
    public bool ReadWindow(int window, Span<float> floatValues, Span<long> ids, Span<bool> mask)
    {
        int n = binding.SequenceLength;
        int start = (int)Math.Min((long)window * n, loadedPositions);
        Fill(floatValues, ids, mask, Math.Min(n, loadedPositions - start), head: 0, offset: start);
        return mask.Contains(true);
    }

    /// <summary>The error for a row without any real position.</summary>
    public InvalidOperationException NoRealPosition()
        => new($"Row {row.Position} has no real position (its mask is all padding); every row needs at least one.");

    /// <summary>Reads the current row's values (checked) and mask into the row buffers; returns its number of positions.</summary>
    private int LoadRow()
    {
        int length, positions;
        if (floats is not null)
        {
            floats(ref floatBuffer);
            length = floatBuffer.Length;
            if (length % binding.Channels != 0)
                throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                    $"Input column '{binding.Column}' holds {length} values in row {row.Position}, not a multiple of its {binding.Channels} channels per position."));
            Grow(ref rowFloats, length);
            floatBuffer.CopyTo(rowFloats);
            CheckFinite(rowFloats.AsSpan(0, length));
            positions = length / binding.Channels;
        }
        else
        {
            if (ints is not null) { ints(ref intBuffer); length = intBuffer.Length; Grow(ref rowIds, length); int i = 0; foreach (var v in intBuffer.DenseValues()) rowIds[i++] = v; }
            else if (longs is not null) { longs(ref longBuffer); length = longBuffer.Length; Grow(ref rowIds, length); int i = 0; foreach (var v in longBuffer.DenseValues()) rowIds[i++] = v; }
            else if (text is not null) length = Tokenize();
            else { keys!(ref keyBuffer); length = keyBuffer.Length; Grow(ref rowIds, length); int i = 0; foreach (var v in keyBuffer.DenseValues()) { rowIds[i] = KeyToId(v, i); i++; } }
            if (keys is null && text is null) CheckIds(rowIds.AsSpan(0, length));
            positions = length;
        }
        if (maskGetter is not null)
        {
            maskGetter(ref maskBuffer);
            if (maskBuffer.Length != positions)
                throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                    $"Mask column '{binding.MaskColumn}' has {maskBuffer.Length} values in row {row.Position}, input column '{binding.Column}' has {positions} positions; they must match."));
            Grow(ref rowMask, positions);
            maskBuffer.CopyTo(rowMask);
        }
        return positions;
    }

    /// <summary>
    /// Fills N positions from the loaded row: position i &lt; <paramref name="kept"/> is row position i (i &lt;
    /// <paramref name="head"/>) or <paramref name="offset"/> + i; the rest is padding, masked out.
    /// </summary>
    private void Fill(Span<float> floatValues, Span<long> ids, Span<bool> mask, int kept, int head, int offset)
    {
        int n = binding.SequenceLength;
        long padId = layout.PaddingId ?? paddingTokenId ?? 0;
        for (int i = 0; i < n; i++)
        {
            bool real = i < kept;
            int s = real ? (i < head ? i : offset + i) : 0;
            if (floats is not null)
            {
                var target = floatValues.Slice(i * binding.Channels, binding.Channels);
                if (real) rowFloats.AsSpan(s * binding.Channels, binding.Channels).CopyTo(target);
                else target.Clear();
            }
            else ids[i] = real ? rowIds[s] : padId;
            mask[i] = real && (maskGetter is not null ? rowMask[s]
                             : paddingTokenId is not { } pad || !binding.IsTokens || rowIds[s] != pad);
        }
    }

    /// <summary>The current row's text as the tokenizer's ids, in <see cref="rowIds"/>; returns their count.</summary>
    private int Tokenize()
    {
        text!(ref textBuffer);
        var encoded = binding.Tokenizer!.EncodeToIds(textBuffer.Span);
        if (encoded.Count == 0 && layout.UnknownId is { } unknown)
        {
            // An empty text still encodes (as the unknown token) instead of failing for want of a real position.
            Grow(ref rowIds, 1);
            rowIds[0] = unknown;
            return 1;
        }
        Grow(ref rowIds, encoded.Count);
        for (int i = 0; i < encoded.Count; i++) rowIds[i] = encoded[i];
        CheckIds(rowIds.AsSpan(0, encoded.Count));
        return encoded.Count;
    }

    private static void Grow<T>(ref T[] buffer, int length)
    {
        if (buffer.Length < length) buffer = new T[Math.Max(length, buffer.Length * 2)];
    }

    /// <summary>Key value k is id k−1; 0 (a missing key: a value the key map did not see) is the reserved unknown id.</summary>
    private long KeyToId(uint key, int index)
    {
        if (key > layout.InputVocabulary)
            throw new ArgumentOutOfRangeException(binding.Column, string.Create(CultureInfo.InvariantCulture,
                $"Input column '{binding.Column}' has key {key} (token id {key - 1L}) at index {index} of row {row.Position}, outside the vocabulary [0, {layout.InputVocabulary})."));
        if (key != 0) return key - 1L;
        if (layout.UnknownId is { } unknown) return unknown;
        throw new InvalidOperationException($"Input column '{binding.Column}' has a missing key at index {index} of row {row.Position}; this model reserves no unknown token (it was saved before format 1.4 or without special tokens): map missing tokens to a padding id.");
    }

    private void CheckFinite(ReadOnlySpan<float> values)
    {
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i]))
                throw new InvalidOperationException(
                    string.Create(CultureInfo.InvariantCulture, $"Input column '{binding.Column}' holds {values[i]} at index {i} of row {row.Position}; Linformer needs finite values (replace or drop missing values first)."));
    }

    private void CheckIds(ReadOnlySpan<long> ids)
    {
        int vocabulary = layout.InputVocabulary;
        for (int i = 0; i < ids.Length; i++)
            if (ids[i] < 0 || ids[i] >= vocabulary)
                throw new ArgumentOutOfRangeException(binding.Column,
                    string.Create(CultureInfo.InvariantCulture, $"Input column '{binding.Column}' has token id {ids[i]} at index {i} of row {row.Position}, outside the vocabulary [0, {vocabulary})."));
    }
}
