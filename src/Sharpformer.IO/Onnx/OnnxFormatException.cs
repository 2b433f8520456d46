namespace Sharpformer.IO.Onnx;

/// <summary>
/// An ONNX file broke a rule of the format or of the importer. The message names the file, the element (tensor, node or
/// field) and the rule, and says how to fix the input where that is possible.
/// </summary>
public sealed class OnnxFormatException : Exception
{
    /// <summary>Creates an exception with a bare message (prefer the constructor that names the file).</summary>
    public OnnxFormatException()
    {
    }

    /// <summary>Creates an exception with a bare message (prefer the constructor that names the file).</summary>
    public OnnxFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an exception that wraps <paramref name="innerException"/>.</summary>
    public OnnxFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates an exception naming <paramref name="filePath"/> and the offending <paramref name="element"/>.</summary>
    public OnnxFormatException(string filePath, string element, string rule)
        : base($"{filePath}: {element}: {rule}")
    {
        FilePath = filePath;
        Element = element;
    }

    /// <summary>The ONNX file (or a description of the buffer) that was being read.</summary>
    public string? FilePath { get; }

    /// <summary>The tensor, node, graph or field that broke the rule.</summary>
    public string? Element { get; }
}
