using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Algorithms.FlatQuant;

/// <summary>
/// x·(L ⊗ R) computed as Lᵀ·X·R on each row reshaped to X (n1 × n2), so the n × n product is never formed: O(n·(n1+n2))
/// work and n1² + n2² parameters instead of n².
/// </summary>
public static class Kronecker
{
    /// <summary>
    /// The factor pair n1 · n2 = n with n1 ≤ n2 and n1 the largest divisor of n not above √n (4096 → 64×64, 14336 →
    /// 112×128, 384 → 16×24, 1408 → 32×44). Any n works: a prime gives 1 × n, a dense transform.
    /// </summary>
    public static (int Left, int Right) Factors(int n)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "width must be positive");
        int a = (int)Math.Sqrt(n);
        while ((long)(a + 1) * (a + 1) <= n) a++;
        while (a * a > n) a--;
        for (; a > 1; a--)
            if (n % a == 0) return (a, n / a);
        return (1, n);
    }

    /// <summary>x [..., n1·n2] times (left ⊗ right), in x's dtype.</summary>
    public static Tensor Apply(Tensor x, Tensor left, Tensor right)
    {
        using var scope = NewDisposeScope();
        long n1 = left.shape[0], n2 = right.shape[0];
        if (x.shape[^1] != n1 * n2) throw new ArgumentException($"width {x.shape[^1]} is not {n1}×{n2}");
        Tensor m = x.reshape(-1, n1, n2);
        m = matmul(m, right.to(x.dtype));
        m = matmul(left.t().to(x.dtype), m);
        return m.reshape(x.shape).MoveToOuterDisposeScope();
    }
}
