using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using MPI;

namespace Linformer.MLNet.Distributed;

/// <summary>Runs a program as one process of an MPI job (started with <c>mpiexec -n P dotnet app.dll</c>).</summary>
public static class LinformerMpi
{
    /// <summary>
    /// MPI libraries tried on Linux, in order, for MPI.NET's <c>msmpi.dll</c> (MS-MPI, which has MPICH's binary
    /// interface): MPICH's, then the MPICH-compatible name Intel MPI and MVAPICH use. The environment variable
    /// <c>LINFORMER_MPI_LIBRARY</c> names another. Open MPI has another binary interface and cannot be used.
    /// </summary>
    public static IReadOnlyList<string> LinuxLibraryNames { get; } = ["libmpich.so.12", "libmpi.so.12"];

    private static readonly object Gate = new();
    private static bool resolverSet;

    /// <summary>
    /// Initialises MPI, runs <paramref name="body"/> with this process's <see cref="MpiGradientReducer"/>, and finalises
    /// MPI. When <paramref name="body"/> throws, the error is written to standard error with the rank, and the whole
    /// job is aborted (<c>MPI_Abort</c>, exit code 1), so no other process waits forever for this one's gradients.
    /// </summary>
    /// <param name="args">The program's arguments (MPI may read its own from them).</param>
    /// <param name="body">The program: usually builds the pipeline with <c>GradientReducer</c> set and calls <c>Fit</c>; only rank 0 should write files.</param>
    public static void Run(string[] args, Action<MpiGradientReducer> body)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(body);
        UseSystemMpi();
        using var environment = new MPI.Environment(ref args);
        var world = Communicator.world;
        try
        {
            body(new MpiGradientReducer(world));
        }
        catch (Exception ex)
        {
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Linformer MPI process {world.Rank} of {world.Size} failed; aborting all processes: {ex}"));
            Console.Error.Flush();
            world.Abort(1);
            throw;   // not reached: MPI_Abort ends the process
        }
    }

    /// <summary>
    /// Points MPI.NET at the system's MPI library: on Linux maps its <c>msmpi.dll</c> to MPICH's library (see
    /// <see cref="LinuxLibraryNames"/>); elsewhere leaves the default (MS-MPI on Windows). Called by <see cref="Run"/>;
    /// call it yourself before using MPI.NET directly.
    /// </summary>
    /// <exception cref="DllNotFoundException">No MPI library with MPICH's binary interface could be loaded; the message says what to install.</exception>
    public static void UseSystemMpi()
    {
        lock (Gate)
        {
            if (resolverSet) return;
            NativeLibrary.SetDllImportResolver(typeof(Communicator).Assembly, Resolve);
            resolverSet = true;
        }
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (!OperatingSystem.IsLinux() || !name.StartsWith("msmpi", StringComparison.OrdinalIgnoreCase)) return IntPtr.Zero;
        var candidates = System.Environment.GetEnvironmentVariable("LINFORMER_MPI_LIBRARY") is { Length: > 0 } chosen ? [chosen] : LinuxLibraryNames;
        foreach (var candidate in candidates)
            if (NativeLibrary.TryLoad(candidate, out var handle)) return handle;
        throw new DllNotFoundException(
            $"MPI.NET needs an MPI library with MPICH's binary interface, and none of {string.Join(", ", candidates)} could be loaded. " +
            "On Debian or Ubuntu: apt-get install mpich. Open MPI cannot be used; set LINFORMER_MPI_LIBRARY to the path of an MPICH-compatible library (Intel MPI, MVAPICH) if it lives elsewhere.");
    }
}
