using Linformer.MLNet.Interop;

namespace Linformer.MLNet.Tests.Interop;

/// <summary><see cref="ModelContextBridge"/>'s checks of the objects ML.NET hands a loader.</summary>
[TestClass]
public sealed class ModelContextBridgeTests
{
    [TestMethod]
    public void Bridge_LoadMembers_RejectAnObjectThatIsNoModelLoadContext()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => ModelContextBridge.GetReader(new object()));
        StringAssert.Contains(ex.Message, "ModelLoadContext");
        Assert.IsFalse(ModelContextBridge.IsModelLoadContext("not a context"));
    }
}
