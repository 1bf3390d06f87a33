using System.Globalization;

namespace Linformer.MLNet.Interop;

/// <summary>
/// Identity and format version of one component's entry in an ML.NET model zip: our validated twin of ML.NET's
/// internal struct <c>Microsoft.ML.VersionInfo</c>, which <see cref="ModelContextBridge"/> writes into the
/// entry's header on save and checks on load.
/// </summary>
/// <remarks>
/// Versioning rule (the same as ML.NET's own components): a writer stamps <see cref="VersionWritten"/> (its
/// format) and <see cref="VersionReadable"/> (the oldest reader format that can still read it). A reader accepts
/// an entry when the entry's readable version is at most the reader's <see cref="VersionWritten"/> and the entry's
/// written version is at least the reader's <see cref="VersionWeCanReadBack"/>. Versions are conventionally
/// written as <c>0x0001000N</c>, one step per format change.
/// </remarks>
internal sealed class ModelVersionInfo
{
    /// <summary>ML.NET stores the model signature as eight 8-bit characters in one <see cref="ulong"/>.</summary>
    public const int ModelSignatureLength = 8;

    /// <summary>ML.NET stores the loader signature as at most 24 8-bit characters in the header.</summary>
    public const int MaxLoaderSignatureLength = 24;

    /// <summary>Creates and validates a version description.</summary>
    /// <param name="modelSignature">Exactly 8 characters (code points below 256) naming the entry's format, e.g. <c>"LINFENCD"</c>.</param>
    /// <param name="versionWritten">The format version this code writes.</param>
    /// <param name="versionReadable">The oldest reader format version that can read what this code writes.</param>
    /// <param name="versionWeCanReadBack">The oldest format version this code can still read.</param>
    /// <param name="loaderSignature">The name ML.NET looks the loader up by (case-insensitive, at most 24 characters below 256); it must equal the loader signature of the component's <see cref="MLNetLoadableModelAttribute"/>.</param>
    /// <param name="loaderAssemblyName">The simple name of the assembly that declares the loader (ML.NET loads it by this name before looking the loader up); see <see cref="ForType"/>.</param>
    /// <exception cref="ArgumentException">A signature has the wrong length or characters, a name is empty, or the versions are inconsistent.</exception>
    public ModelVersionInfo(string modelSignature, uint versionWritten, uint versionReadable, uint versionWeCanReadBack,
        string loaderSignature, string loaderAssemblyName)
    {
        ArgumentNullException.ThrowIfNull(modelSignature);
        ArgumentException.ThrowIfNullOrWhiteSpace(loaderSignature);
        ArgumentException.ThrowIfNullOrWhiteSpace(loaderAssemblyName);
        if (modelSignature.Length != ModelSignatureLength || !IsEightBit(modelSignature))
            throw new ArgumentException(
                $"modelSignature ('{modelSignature}', {modelSignature.Length} characters) must be exactly {ModelSignatureLength} characters below U+0100.",
                nameof(modelSignature));
        if (loaderSignature.Length > MaxLoaderSignatureLength || !IsEightBit(loaderSignature))
            throw new ArgumentException(
                $"loaderSignature ('{loaderSignature}', {loaderSignature.Length} characters) must be at most {MaxLoaderSignatureLength} characters below U+0100.",
                nameof(loaderSignature));
        if (versionReadable > versionWritten)
            throw new ArgumentException(
                $"versionReadable ({Format(versionReadable)}) must not exceed versionWritten ({Format(versionWritten)}).",
                nameof(versionReadable));
        if (versionWeCanReadBack > versionWritten)
            throw new ArgumentException(
                $"versionWeCanReadBack ({Format(versionWeCanReadBack)}) must not exceed versionWritten ({Format(versionWritten)}).",
                nameof(versionWeCanReadBack));

        ModelSignature = modelSignature;
        VersionWritten = versionWritten;
        VersionReadable = versionReadable;
        VersionWeCanReadBack = versionWeCanReadBack;
        LoaderSignature = loaderSignature;
        LoaderAssemblyName = loaderAssemblyName;
    }

    /// <summary>
    /// Creates a version description whose loader assembly is the one declaring <paramref name="loaderType"/>,
    /// stored by simple name so that a model saved by one build of the library loads with another build that can
    /// read its format (a full name would pin the assembly version).
    /// </summary>
    public static ModelVersionInfo ForType(Type loaderType, string modelSignature, uint versionWritten, uint versionReadable,
        uint versionWeCanReadBack, string loaderSignature)
    {
        ArgumentNullException.ThrowIfNull(loaderType);
        var assemblyName = loaderType.Assembly.GetName().Name
            ?? throw new ArgumentException($"The assembly of {loaderType} has no name.", nameof(loaderType));
        return new ModelVersionInfo(modelSignature, versionWritten, versionReadable, versionWeCanReadBack, loaderSignature, assemblyName);
    }

    /// <summary>The entry's format name: exactly 8 characters.</summary>
    public string ModelSignature { get; }

    /// <summary>The format version this code writes.</summary>
    public uint VersionWritten { get; }

    /// <summary>The oldest reader format version that can read what this code writes.</summary>
    public uint VersionReadable { get; }

    /// <summary>The oldest format version this code can still read.</summary>
    public uint VersionWeCanReadBack { get; }

    /// <summary>The name ML.NET looks the loader up by (case-insensitive).</summary>
    public string LoaderSignature { get; }

    /// <summary>The simple name of the assembly that declares the loader.</summary>
    public string LoaderAssemblyName { get; }

    /// <summary>Formats a version the way ML.NET's sources write them (<c>0x00010002</c>).</summary>
    public static string Format(uint version) => "0x" + version.ToString("X8", CultureInfo.InvariantCulture);

    /// <summary>Packs an 8-character signature the way ML.NET stores it (first character in the lowest byte).</summary>
    internal static ulong PackSignature(string signature)
    {
        ulong packed = 0;
        for (var i = 0; i < signature.Length; i++)
            packed |= (ulong)(byte)signature[i] << (8 * i);
        return packed;
    }

    /// <summary>Unpacks a stored model signature for messages; non-printable bytes become '?'.</summary>
    internal static string UnpackSignature(ulong packed)
    {
        Span<char> chars = stackalloc char[ModelSignatureLength];
        for (var i = 0; i < ModelSignatureLength; i++)
        {
            var b = (char)(byte)(packed >> (8 * i));
            chars[i] = b is >= ' ' and <= '~' ? b : '?';
        }
        return new string(chars);
    }

    private static bool IsEightBit(string s)
    {
        foreach (var c in s)
            if (c > '\u00FF') return false;
        return true;
    }
}
