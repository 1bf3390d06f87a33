using Linformer.MLNet.Tests.Hardening;
using Linformer.MLNet.Tests.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Tests.Data;

/// <summary>
/// Variable-length input columns: a row shorter than N encodes exactly as the same row padded to N with a mask, a
/// longer row exactly as the positions its <see cref="LinformerTruncation"/> rule keeps; clear errors otherwise.
/// Each expectation comes from a fixed-length model with the same weights (<c>InitialModel</c>, <c>Epochs = 0</c>)
/// fed rows padded or cut by hand.
/// </summary>
[TestClass]
public sealed class VariableLengthInputTests
{
    private const int N = 16, Keys = 10, Channels = 2;

    public sealed class VarKeys { [KeyType(Keys)] public uint[] Tokens { get; set; } = []; }
    public sealed class VarKeysWithMask { [KeyType(Keys)] public uint[] Tokens { get; set; } = []; public bool[] Mask { get; set; } = []; }
    public sealed class FixedKeys { [KeyType(Keys), VectorType(N)] public uint[] Tokens { get; set; } = []; [VectorType(N)] public bool[] Mask { get; set; } = []; }
    public sealed class VarKeysFixedMask { [KeyType(Keys)] public uint[] Tokens { get; set; } = []; [VectorType(N)] public bool[] Mask { get; set; } = []; }
    public sealed class VarFloats { public float[] Values { get; set; } = []; }
    public sealed class FixedFloats { [VectorType(N * Channels)] public float[] Values { get; set; } = []; [VectorType(N)] public bool[] Mask { get; set; } = []; }

    private static LinformerEstimator.Options Options(string input, int epochs = 1) => new()
    {
        InputColumnName = input, OutputColumnName = "Features", SequenceLength = N, ModelWidth = 8, ProjectedLength = 4, Heads = 2,
        Depth = 2, FeedForwardSize = 16, Dropout = 0, FeedForwardDropout = 0, Epochs = epochs, BatchSize = 4,
    };

    /// <summary>Rows of 1 … 23 keys (1-based key values), so that some are shorter than N, one is N and some longer.</summary>
    private static uint[][] KeyRows(int seed)
    {
        var random = new Random(seed);
        return new[] { 5, 16, 23, 1, 9, 40, 17 }.Select(length => Enumerable.Range(0, length).Select(_ => (uint)random.Next(1, Keys + 1)).ToArray()).ToArray();
    }

    /// <summary>The positions of a row of <paramref name="length"/> that <paramref name="rule"/> keeps, as the docs state it.</summary>
    private static int[] Kept(int length, LinformerTruncation rule)
    {
        if (length <= N) return Enumerable.Range(0, length).ToArray();
        return rule switch
        {
            LinformerTruncation.KeepStart => Enumerable.Range(0, N).ToArray(),
            LinformerTruncation.KeepEnd => Enumerable.Range(length - N, N).ToArray(),
            _ => Enumerable.Range(0, N / 4).Concat(Enumerable.Range(length - (N - N / 4), N - N / 4)).ToArray(),
        };
    }

    /// <summary>A fixed-length model with <paramref name="model"/>'s weights, reading a fixed column and a mask column.</summary>
    private static LinformerTransformer FixedTwin(MLContext ml, LinformerTransformer model, IDataView fixedData, string input)
    {
        var o = Options(input, epochs: 0);
        o.InitialModel = model;
        o.MaskColumnName = "Mask";
        return ml.Transforms.Linformer(o).Fit(fixedData);
    }

    [TestMethod]
    [DataRow(LinformerTruncation.KeepStart)]
    [DataRow(LinformerTruncation.KeepEnd)]
    [DataRow(LinformerTruncation.KeepStartAndEnd)]
    public void KeyRowsArePaddedAndMaskedOrCutExactlyAsByHand(LinformerTruncation rule)
    {
        var ml = new MLContext(seed: 3);
        var rows = KeyRows(1);
        var o = Options("Tokens");
        o.Truncation = rule;
        using var model = ml.Transforms.Linformer(o).Fit(ml.Data.LoadFromEnumerable(rows.Select(r => new VarKeys { Tokens = r })));

        var probe = KeyRows(2);
        var byHand = probe.Select(r =>
        {
            var kept = Kept(r.Length, rule);
            var tokens = new uint[N];
            var mask = new bool[N];
            for (int i = 0; i < N; i++) (tokens[i], mask[i]) = i < kept.Length ? (r[kept[i]], true) : (3u, false);   // any key pads: it is masked out
            return new FixedKeys { Tokens = tokens, Mask = mask };
        }).ToArray();
        var fixedData = ml.Data.LoadFromEnumerable(byHand);
        using var twin = FixedTwin(ml, model, fixedData, "Tokens");

        var expected = Tiny.Features(twin, fixedData);
        var actual = Tiny.Features(model, ml.Data.LoadFromEnumerable(probe.Select(r => new VarKeys { Tokens = r })));
        Tiny.AssertBitIdentical(expected, actual, $"{rule}: variable-length rows vs the same rows padded or cut by hand, with a mask");
    }

    [TestMethod]
    public void FloatRowsOfWholePositionsArePaddedAndMaskedExactlyAsByHand()
    {
        var ml = new MLContext(seed: 5);
        var random = new Random(7);
        float[] Row(int positions) => Enumerable.Range(0, positions * Channels).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
        var train = new[] { 3, 16, 20, 7, 11, 2 }.Select(p => new VarFloats { Values = Row(p) }).ToArray();
        var o = Options("Values");
        o.Channels = Channels;
        using var model = ml.Transforms.Linformer(o).Fit(ml.Data.LoadFromEnumerable(train));

        var probe = new[] { 4, 16, 1, 25, 9 }.Select(p => new VarFloats { Values = Row(p) }).ToArray();
        var byHand = probe.Select(r =>
        {
            int positions = r.Values.Length / Channels;
            var values = new float[N * Channels];
            r.Values.AsSpan(0, Math.Min(positions, N) * Channels).CopyTo(values);
            return new FixedFloats { Values = values, Mask = Enumerable.Range(0, N).Select(i => i < positions).ToArray() };
        }).ToArray();
        var fixedData = ml.Data.LoadFromEnumerable(byHand);
        using var twin = FixedTwin(ml, model, fixedData, "Values");
        Tiny.AssertBitIdentical(Tiny.Features(twin, fixedData), Tiny.Features(model, ml.Data.LoadFromEnumerable(probe)),
            "variable-length floats vs the same rows padded by hand, with a mask");
    }

    [TestMethod]
    public void AVariableMaskColumnIsPaddedAndCutWithItsInput()
    {
        var ml = new MLContext(seed: 3);
        var rows = KeyRows(4);
        var o = Options("Tokens");
        o.MaskColumnName = "Mask";
        o.Truncation = LinformerTruncation.KeepEnd;
        var random = new Random(9);
        VarKeysWithMask WithMask(uint[] r) => new() { Tokens = r, Mask = r.Select((_, i) => i == 0 || random.Next(4) > 0).ToArray() };
        using var model = ml.Transforms.Linformer(o).Fit(ml.Data.LoadFromEnumerable(rows.Select(WithMask)));

        var probe = KeyRows(5).Select(WithMask).Select(r => { r.Mask[^1] = true; return r; }).ToArray();
        var byHand = probe.Select(r =>
        {
            var kept = Kept(r.Tokens.Length, LinformerTruncation.KeepEnd);
            return new FixedKeys
            {
                Tokens = Enumerable.Range(0, N).Select(i => i < kept.Length ? r.Tokens[kept[i]] : 1u).ToArray(),
                Mask = Enumerable.Range(0, N).Select(i => i < kept.Length && r.Mask[kept[i]]).ToArray(),
            };
        }).ToArray();
        var fixedData = ml.Data.LoadFromEnumerable(byHand);
        using var twin = FixedTwin(ml, model, fixedData, "Tokens");
        Tiny.AssertBitIdentical(Tiny.Features(twin, fixedData), Tiny.Features(model, ml.Data.LoadFromEnumerable(probe)),
            "variable-length rows with their own masks vs the same rows and masks cut and padded by hand");
    }

    [TestMethod]
    public void AVariableColumnWithoutSequenceLengthIsAnErrorNamingIt()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { new VarKeys { Tokens = [1, 2, 3] } });
        var o = Options("Tokens");
        o.SequenceLength = 0;
        foreach (var attempt in new Action[] { () => ml.Transforms.Linformer(o).Fit(data), () => ml.Transforms.Linformer(o).GetOutputSchema(LinformerEstimator.ShapeOf(data.Schema)) })
        {
            var ex = Assert.ThrowsExactly<ArgumentException>(attempt);
            Assert.AreEqual("SequenceLength", ex.ParamName);
            StringAssert.Contains(ex.Message, "SequenceLength must be set for the variable-length input column 'Tokens'");
            StringAssert.Contains(ex.Message, "Key<UInt32");
        }
    }

    [TestMethod]
    public void AFixedMaskColumnBesideAVariableInputIsASchemaMismatch()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { new VarKeysFixedMask { Tokens = [1, 2, 3], Mask = new bool[N] } });
        var o = Options("Tokens");
        o.MaskColumnName = "Mask";
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.Linformer(o).Fit(data));
        StringAssert.Contains(ex.Message, "Schema mismatch for input column 'Mask': expected VarVector<Boolean> (one value per position of the variable-length input column 'Tokens'), got Vector<Boolean, 16>");
    }

    [TestMethod]
    public void AMaskRowOfAnotherLengthAndAFloatRowOfPartPositionsAreErrors()
    {
        var ml = new MLContext(seed: 1);
        var o = Options("Tokens");
        o.MaskColumnName = "Mask";
        var keys = ml.Data.LoadFromEnumerable(new[] { new VarKeysWithMask { Tokens = [1, 2, 3], Mask = [true, true] } });
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Transforms.Linformer(o).Fit(keys));
        StringAssert.Contains(ex.Message, "Mask column 'Mask' has 2 values in row 0, input column 'Tokens' has 3 positions");

        var f = Options("Values");
        f.Channels = Channels;
        var floats = ml.Data.LoadFromEnumerable(new[] { new VarFloats { Values = [1, 2, 3, 4] }, new VarFloats { Values = [1, 2, 3] } });
        ex = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Transforms.Linformer(f).Fit(floats));
        StringAssert.Contains(ex.Message, "Input column 'Values' holds 3 values in row 1, not a multiple of its 2 channels per position");
    }

    [TestMethod]
    public void AVariableLengthModelSavesAsFormat14ReadableBy14OnlyAndLoadsBitIdentical()
    {
        var ml = new MLContext(seed: 3);
        var o = Options("Tokens");
        o.Truncation = LinformerTruncation.KeepStartAndEnd;
        var train = ml.Data.LoadFromEnumerable(KeyRows(1).Select(r => new VarKeys { Tokens = r }));
        using var model = ml.Transforms.Linformer(o).Fit(train);
        var path = Tiny.TempPath(".zip");
        try
        {
            ml.Model.Save(model, train.Schema, path);
            var (written, readable) = ModelFormatCompatibilityTests.Versions(path);
            Assert.AreEqual(0x00010005u, written, "version written (today's format)");
            Assert.AreEqual(0x00010004u, readable, "version readable: an older reader would ignore the variable length");
            using var loaded = (LinformerTransformer)new MLContext().Model.Load(path, out _);
            var probe = ml.Data.LoadFromEnumerable(KeyRows(2).Select(r => new VarKeys { Tokens = r }));
            Tiny.AssertBitIdentical(Tiny.Features(model, probe), Tiny.Features(loaded, probe), "saved and loaded variable-length model");
        }
        finally { File.Delete(path); }
    }
}
