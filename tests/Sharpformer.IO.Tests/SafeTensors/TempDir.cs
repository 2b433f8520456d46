using System.Text;

namespace Sharpformer.IO.Tests.SafeTensors;

/// <summary>A fresh folder under the system temp directory, deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sharpformer-io-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Writes <paramref name="bytes"/> to a new file and returns its path.</summary>
    public string Write(string name, byte[] bytes)
    {
        string path = File(name);
        System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A mapping still open on some platforms; the OS temp cleaner takes it.
        }
    }

    /// <summary>Builds a file: 8-byte little-endian length of <paramref name="header"/>, the header, then <paramref name="dataBytes"/> zero bytes.</summary>
    public static byte[] Build(string header, int dataBytes) => Build(Encoding.UTF8.GetBytes(header), new byte[dataBytes]);

    public static byte[] Build(byte[] header, byte[] data)
    {
        var bytes = new byte[8 + header.Length + data.Length];
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    /// <summary>Turns a Rust byte-string literal body (with \xNN and \" escapes) into bytes, so upstream vectors read as written.</summary>
    public static byte[] RustBytes(string literal)
    {
        var bytes = new List<byte>();
        for (int i = 0; i < literal.Length; i++)
        {
            if (literal[i] == '\\' && literal[i + 1] == 'x')
            {
                bytes.Add(Convert.ToByte(literal.Substring(i + 2, 2), 16));
                i += 3;
            }
            else if (literal[i] == '\\')
            {
                bytes.Add((byte)literal[i + 1]);
                i += 1;
            }
            else
            {
                bytes.Add((byte)literal[i]);
            }
        }

        return [.. bytes];
    }
}
