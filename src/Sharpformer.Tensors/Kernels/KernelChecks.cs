using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// Boundary checks shared by the span kernels. Each check is a cheap comparison; the throw sits in a separate cold
/// method so the hot caller stays small and the message can name the operation, the operand and the sizes.
/// </summary>
internal static class KernelChecks
{
    /// <summary>Throws unless <paramref name="rows"/> and <paramref name="cols"/> are non-negative.</summary>
    public static void Dims(string op, int rows, int cols)
    {
        if (rows < 0 || cols < 0) ThrowDims(op, rows, cols);
    }

    /// <summary>
    /// Throws unless a span named <paramref name="name"/> holds at least <paramref name="needed"/> elements.
    /// <paramref name="layout"/> is a composite format ("[N={0}, C={1}]") filled with the sizes only when throwing, so the
    /// check allocates nothing on the hot path.
    /// </summary>
    public static void AtLeast(string op, string name, int length, long needed, string layout, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0)
    {
        if (length < needed) ThrowShort(op, name, length, needed, string.Format(CultureInfo.InvariantCulture, layout, a, b, c, d, e));
    }

    /// <summary>Throws unless an optional span is empty or holds at least <paramref name="needed"/> elements.</summary>
    public static void Optional(string op, string name, int length, long needed, string layout, long a = 0, long b = 0, long c = 0, long d = 0)
    {
        if (length != 0 && length < needed) ThrowShort(op, name, length, needed, string.Format(CultureInfo.InvariantCulture, layout, a, b, c, d));
    }

    /// <summary>Throws unless two spans have the same length.</summary>
    public static void SameLength(string op, string nameA, int a, string nameB, int b)
    {
        if (b < a) ThrowNotSame(op, nameA, a, nameB, b);
    }

    [DoesNotReturn]
    private static void ThrowDims(string op, int rows, int cols) =>
        throw new ArgumentException($"{op}: sizes rows={rows}, cols={cols} must be non-negative.");

    [DoesNotReturn]
    private static void ThrowShort(string op, string name, int length, long needed, string shape) =>
        throw new ArgumentException(
            $"{op}: {name} must hold {shape} = {needed} elements but the span has {length}; pass a span of the full size.", name);

    [DoesNotReturn]
    private static void ThrowNotSame(string op, string nameA, int a, string nameB, int b) =>
        throw new ArgumentException($"{op}: {nameB} has {b} elements but {nameA} has {a}; {nameB} must be at least as long.", nameB);

    /// <summary>Throws with a message for an invalid argument value.</summary>
    [DoesNotReturn]
    public static void Invalid(string op, string name, string problem) =>
        throw new ArgumentException($"{op}: {problem}", name);
}
