using Linformer.MLNet.Interop;
using Linformer.MLNet.Tests.Persistence;

namespace Linformer.MLNet.Tests.Interop;

/// <summary><see cref="ModelVersionInfo"/> checks its arguments against ML.NET's model header limits.</summary>
[TestClass]
public sealed class ModelVersionInfoTests
{
    [TestMethod]
    [DataRow("SEVEN77", DisplayName = "7 characters")]
    [DataRow("NINECHARS", DisplayName = "9 characters")]
    [DataRow("ÄÖÜ\u0100ABCD", DisplayName = "a character above U+00FF")]
    public void ModelVersionInfo_RejectsAModelSignatureThatIsNotEight8BitCharacters(string signature)
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => new ModelVersionInfo(signature, 1, 1, 1, "Loader", "Assembly"));
        Assert.AreEqual("modelSignature", ex.ParamName);
        StringAssert.Contains(ex.Message, signature);
    }

    [TestMethod]
    public void ModelVersionInfo_RejectsALoaderSignatureLongerThan24Characters()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => new ModelVersionInfo("ADDCONST", 1, 1, 1, new string('L', 25), "Assembly"));
        Assert.AreEqual("loaderSignature", ex.ParamName);
        StringAssert.Contains(ex.Message, "24");
    }

    [TestMethod]
    public void ModelVersionInfo_RejectsInconsistentVersions()
    {
        Assert.AreEqual("versionReadable",
            Assert.ThrowsExactly<ArgumentException>(() => new ModelVersionInfo("ADDCONST", 1, 2, 1, "Loader", "Assembly")).ParamName);
        Assert.AreEqual("versionWeCanReadBack",
            Assert.ThrowsExactly<ArgumentException>(() => new ModelVersionInfo("ADDCONST", 1, 1, 2, "Loader", "Assembly")).ParamName);
    }

    [TestMethod]
    public void ModelVersionInfo_ForType_StoresTheSimpleAssemblyName()
        => Assert.AreEqual("Linformer.MLNet.Tests", AddConstantTransformer.Format.LoaderAssemblyName);
}
