// Makes TorchSharp's native bridge load on Linux systems whose libstdc++ predates GCC 13 (Debian 12,
// Ubuntu 22.04). libLibTorchSharp.so from TorchSharp 0.107 declares a need for GLIBCXX_3.4.32, used by one
// symbol (std::ios_base_library_init) that the library never relocates against. Marking that version need
// as weak (VER_FLG_WEAK in its Elf64_Vernaux entry) turns the missing version into a loader warning.
//
// This file is compiled twice: as an MSBuild inline task (build/Linformer.MLNet.targets) and into the
// test project, which checks the same logic. It must stay free of dependencies beyond the BCL.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace Linformer.MLNet.Build
{
#if !LINFORMER_NATIVE_FIX_NO_TASK
    /// <summary>The MSBuild task that applies <see cref="LibTorchSharpNativeFix"/> to files in an output folder.</summary>
    public sealed class LinformerPatchLibTorchSharp : Microsoft.Build.Utilities.Task
    {
        /// <summary>Copies of libLibTorchSharp.so in the build or publish output.</summary>
        [Microsoft.Build.Framework.Required]
        public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();

        /// <inheritdoc />
        public override bool Execute()
        {
            if (LibTorchSharpNativeFix.SystemLibStdCxxHas(LibTorchSharpNativeFix.RequiredVersion)) return true;
            foreach (var item in Files)
            {
                var path = item.GetMetadata("FullPath");
                try
                {
                    if (LibTorchSharpNativeFix.MarkVersionNeedWeak(path, LibTorchSharpNativeFix.RequiredVersion))
                        Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal,
                            "Marked the " + LibTorchSharpNativeFix.RequiredVersion + " need of " + path +
                            " weak: the system libstdc++ lacks it (see README, 'Linux with older libstdc++').");
                }
                catch (Exception ex)
                {
                    Log.LogWarning("Could not adjust " + path + " for this system's libstdc++: " + ex.Message);
                }
            }
            return !Log.HasLoggedErrors;
        }
    }
#endif

    /// <summary>ELF version-need patching for libLibTorchSharp.so.</summary>
    public static class LibTorchSharpNativeFix
    {
        /// <summary>The version TorchSharp 0.107's native bridge asks for and older libstdc++ lacks.</summary>
        public const string RequiredVersion = "GLIBCXX_3.4.32";

        private const uint ShtGnuVerneed = 0x6ffffffe;
        private const ushort VerFlgWeak = 0x2;

        /// <summary>Where the dynamic loader usually finds libstdc++ on 64-bit Linux distributions.</summary>
        public static readonly string[] LibStdCxxCandidates =
        {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
            "/lib/aarch64-linux-gnu/libstdc++.so.6",
            "/usr/lib64/libstdc++.so.6",
            "/lib64/libstdc++.so.6",
            "/usr/lib/libstdc++.so.6",
            "/usr/local/lib64/libstdc++.so.6",
            "/usr/local/lib/libstdc++.so.6",
        };

        /// <summary>True when some libstdc++.so.6 the loader would find defines <paramref name="version"/>.</summary>
        public static bool SystemLibStdCxxHas(string version)
        {
            var dirs = new List<string>();
            var ldPath = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
            if (!string.IsNullOrEmpty(ldPath))
                foreach (var d in ldPath.Split(':'))
                    if (d.Length > 0) dirs.Add(Path.Combine(d, "libstdc++.so.6"));
            dirs.AddRange(LibStdCxxCandidates);
            foreach (var path in dirs)
            {
                if (!File.Exists(path)) continue;
                if (ContainsAscii(File.ReadAllBytes(path), version + "\0")) return true;
                // The first libstdc++ the loader would pick decides.
                return false;
            }
            return false;
        }

        /// <summary>
        /// Returns the vna_flags of the version need named <paramref name="version"/>, or null when the
        /// file needs no such version. Throws <see cref="InvalidDataException"/> for a file that is not a
        /// little-endian 64-bit ELF object.
        /// </summary>
        public static ushort? ReadVersionNeedFlags(byte[] elf, string version)
        {
            long offset = FindVernaux(elf, version);
            return offset < 0 ? (ushort?)null : BitConverter.ToUInt16(elf, (int)offset + 4);
        }

        /// <summary>
        /// Marks the version need <paramref name="version"/> in the ELF file at <paramref name="path"/> weak.
        /// Returns true when the file was changed, false when it already was weak or needs no such version.
        /// The file is rewritten through a temporary file and a move, so a hard link into a package cache
        /// is replaced rather than modified.
        /// </summary>
        public static bool MarkVersionNeedWeak(string path, string version)
        {
            var elf = File.ReadAllBytes(path);
            long offset = FindVernaux(elf, version);
            if (offset < 0) return false;
            ushort flags = BitConverter.ToUInt16(elf, (int)offset + 4);
            if ((flags & VerFlgWeak) != 0) return false;
            flags |= VerFlgWeak;
            elf[offset + 4] = (byte)(flags & 0xff);
            elf[offset + 5] = (byte)(flags >> 8);
            var temp = path + ".patching";
            File.WriteAllBytes(temp, elf);
            File.Delete(path); // unlink first: never write through a hard link into a package cache
            File.Move(temp, path);
            return true;
        }

        private static long FindVernaux(byte[] elf, string version)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new InvalidDataException("Not an ELF file.");
            if (elf[4] != 2 || elf[5] != 1)
                throw new InvalidDataException("Only little-endian 64-bit ELF files are supported.");
            long shoff = (long)BitConverter.ToUInt64(elf, 0x28);
            int shentsize = BitConverter.ToUInt16(elf, 0x3A);
            int shnum = BitConverter.ToUInt16(elf, 0x3C);
            for (int i = 0; i < shnum; i++)
            {
                long sh = shoff + (long)i * shentsize;
                if (BitConverter.ToUInt32(elf, (int)sh + 4) != ShtGnuVerneed) continue;
                long secOffset = (long)BitConverter.ToUInt64(elf, (int)sh + 0x18);
                uint link = BitConverter.ToUInt32(elf, (int)sh + 0x28);
                uint count = BitConverter.ToUInt32(elf, (int)sh + 0x2C);
                long strtab = (long)BitConverter.ToUInt64(elf, (int)(shoff + link * shentsize) + 0x18);
                long vn = secOffset;
                for (uint n = 0; n < count; n++)
                {
                    ushort auxCount = BitConverter.ToUInt16(elf, (int)vn + 2);
                    long aux = vn + BitConverter.ToUInt32(elf, (int)vn + 8);
                    for (int a = 0; a < auxCount; a++)
                    {
                        uint name = BitConverter.ToUInt32(elf, (int)aux + 8);
                        if (ReadCString(elf, strtab + name) == version) return aux;
                        aux += BitConverter.ToUInt32(elf, (int)aux + 12);
                    }
                    uint next = BitConverter.ToUInt32(elf, (int)vn + 12);
                    if (next == 0) break;
                    vn += next;
                }
            }
            return -1;
        }

        private static string ReadCString(byte[] data, long offset)
        {
            long end = offset;
            while (end < data.Length && data[end] != 0) end++;
            return Encoding.ASCII.GetString(data, (int)offset, (int)(end - offset));
        }

        private static bool ContainsAscii(byte[] haystack, string needle)
        {
            var n = Encoding.ASCII.GetBytes(needle);
            for (int i = 0; i + n.Length <= haystack.Length; i++)
            {
                int j = 0;
                while (j < n.Length && haystack[i + j] == n[j]) j++;
                if (j == n.Length) return true;
            }
            return false;
        }
    }
}
