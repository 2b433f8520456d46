namespace Sharpformer.IO.Gguf;

/// <summary>A GGUF file is malformed, exceeds a safety limit, or cannot be exported; the message names the file and the field.</summary>
public sealed class GgufFormatException : Exception
{
    /// <summary>Creates the exception with no message.</summary>
    public GgufFormatException()
    {
    }

    /// <summary>Creates the exception with <paramref name="message"/>.</summary>
    public GgufFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with <paramref name="message"/> and the underlying cause.</summary>
    public GgufFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
