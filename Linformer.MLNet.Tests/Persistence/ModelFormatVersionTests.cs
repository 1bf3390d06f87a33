using Linformer.MLNet.Interop;
using Microsoft.ML;

namespace Linformer.MLNet.Tests.Persistence;

/// <summary>
/// What the model-format header of a component's entry decides at load time: the format version it was written in,
/// its format signature and its loader signature.
/// </summary>
[TestClass]
public sealed class ModelFormatVersionTests : ModelZipTestBase
{
    // Each row: the versions a writer declares (AddConstantTransformer reads 0x00010001 and back to 0x00010001), and
    // what the FormatException must name; no names means the model loads.
    [TestMethod]
    [DataRow(0x00010003u, 0x00010002u, 0x00010001u,
        new[] { "newer", "0x00010003", "0x00010002", "0x00010001", AddConstantTransformer.LoaderSignature },
        DisplayName = "newer, not readable by this version: refused")]
    [DataRow(0x00010002u, AddConstantTransformer.FormatVersion, 0x00010001u, new string[] { },
        DisplayName = "newer, declares this version's format readable: loads")]
    [DataRow(0x00010000u, 0x00010000u, 0x00010000u, new[] { "older", "0x00010000" },
        DisplayName = "older than this version reads back: refused")]
    public void Load_ModelWrittenInAnotherFormatVersion_LoadsOrThrowsFormatExceptionNamingTheVersions(
        uint versionWritten, uint versionReadable, uint versionWeCanReadBack, string[] expectedInMessage)
    {
        var writeAs = ModelVersionInfo.ForType(typeof(AddConstantTransformer), AddConstantTransformer.ModelSignature,
            versionWritten, versionReadable, versionWeCanReadBack, AddConstantTransformer.LoaderSignature);
        var path = Save(new AddConstantTransformer(InputColumn, OutputColumn, Constant, writeAs: writeAs));

        if (expectedInMessage.Length == 0)
        {
            var loaded = new MLContext().Model.Load(path, out _);

            Assert.AreEqual(Constant, ((AddConstantTransformer)loaded).Constant);
        }
        else
        {
            var ex = LoadAndCatch(path);

            var format = Innermost(ex);
            Assert.IsInstanceOfType<FormatException>(format, ex.ToString());
            foreach (var expected in expectedInMessage) StringAssert.Contains(format.Message, expected);
            TestContext.WriteLine($"{ex.GetType().FullName} > {format.GetType().FullName}: {format.Message}");
        }
    }

    [TestMethod]
    public void Load_EntryWithAnotherFormatSignature_ThrowsFormatException()
    {
        var other = ModelVersionInfo.ForType(typeof(AddConstantTransformer), "OTHERFMT",
            AddConstantTransformer.FormatVersion, AddConstantTransformer.FormatVersion, AddConstantTransformer.FormatVersion,
            AddConstantTransformer.LoaderSignature);
        var path = Save(new AddConstantTransformer(InputColumn, OutputColumn, Constant, writeAs: other));

        var format = Innermost(LoadAndCatch(path));

        Assert.IsInstanceOfType<FormatException>(format);
        StringAssert.Contains(format.Message, "'OTHERFMT'");
        StringAssert.Contains(format.Message, "'ADDCONST'");
    }

    [TestMethod]
    public void Load_ModelWhoseLoaderSignatureIsRegisteredNowhere_Throws()
    {
        // What a model looks like to a process whose assembly lacks the woven LoadableClass.
        var unknown = ModelVersionInfo.ForType(typeof(AddConstantTransformer), AddConstantTransformer.ModelSignature,
            AddConstantTransformer.FormatVersion, AddConstantTransformer.FormatVersion, AddConstantTransformer.FormatVersion,
            "NoSuchLinformerLoader");
        var path = Save(new AddConstantTransformer(InputColumn, OutputColumn, Constant, writeAs: unknown));

        var ex = LoadAndCatch(path);

        TestContext.WriteLine(Describe(ex));
        Assert.IsInstanceOfType<FormatException>(Innermost(ex), Describe(ex));
    }

    [TestMethod]
    public void Load_ModelWrittenInANewerFormat_FailsTheSameWayInANewProcess()
    {
        var newer = ModelVersionInfo.ForType(typeof(AddConstantTransformer), AddConstantTransformer.ModelSignature,
            0x00010003, 0x00010002, 0x00010001, AddConstantTransformer.LoaderSignature);
        var path = Save(new AddConstantTransformer(InputColumn, OutputColumn, Constant, writeAs: newer));

        var run = RunModelLoadHost(path);

        Assert.AreEqual(2, run.ExitCode, run.ToString());
        StringAssert.Contains(run.StandardError, "System.FormatException", run.ToString());
        StringAssert.Contains(run.StandardError, "0x00010002", run.ToString());
    }
}
