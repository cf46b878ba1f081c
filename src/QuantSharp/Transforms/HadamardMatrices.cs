using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Transforms;

/// <summary>
/// Hadamard matrices of the orders this toolkit supports: 2^k (Sylvester), 12·2^k and 20·2^k (a Paley matrix of
/// order 12 or 20, Kronecker-multiplied by a Sylvester matrix). The extra orders let widths such as 1536 = 12·128 or
/// a 96-wide tail be rotated without falling back to a smaller block.
/// All results are float64 CPU tensors owned by the caller's dispose scope.
/// </summary>
internal static class HadamardMatrices
{
    // Primes q ≡ 3 (mod 4) whose Paley type-I construction gives the base orders q + 1.
    private const int PaleyPrime12 = 11;
    private const int PaleyPrime20 = 19;

    public static bool IsSupportedOrder(int order) =>
        order >= 1 && (BitOperations.IsPow2(order) || IsPow2Multiple(order, 12) || IsPow2Multiple(order, 20));

    /// <summary>The largest supported order not above <paramref name="limit"/> (at least 1; order 1 is [1]).</summary>
    public static int LargestSupportedOrderAtMost(int limit)
    {
        if (limit < 1) throw new ArgumentOutOfRangeException(nameof(limit), limit, "must be at least 1");
        int best = 1;
        foreach (int baseOrder in new[] { 1, 12, 20 })
        {
            if (baseOrder > limit) continue;
            // baseOrder·2^k ≤ limit  ⇔  2^k ≤ floor(limit / baseOrder).
            int candidate = baseOrder << BitOperations.Log2((uint)(limit / baseOrder));
            best = Math.Max(best, candidate);
        }
        return best;
    }

    /// <summary>The orthonormal Hadamard matrix H/√order, in natural (Sylvester) order.</summary>
    public static Tensor Orthonormal(int order) => PlusMinusOne(order).div(Math.Sqrt(order));

    /// <summary>
    /// FP-Quant's "gsr" block: the orthonormal Hadamard matrix with its columns sorted by sequency (how often the
    /// column changes sign going down). The stable sort keeps ties (possible for the 12·2^k and 20·2^k orders) in
    /// natural order, so the result is deterministic.
    /// </summary>
    public static Tensor SequencyOrdered(int order)
    {
        using var scope = NewDisposeScope();
        Tensor h = Orthonormal(order);
        (Tensor _, Tensor byRisingSequency) = SignChangesPerColumn(h).sort(dim: 0, descending: false, stable: true);
        return h.index_select(1, byRisingSequency).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>Number of sign changes down each column of <paramref name="matrix"/> ([rows, cols] → [cols], int64).</summary>
    public static Tensor SignChangesPerColumn(Tensor matrix)
    {
        long rows = matrix.shape[0];
        if (rows < 2) return zeros(matrix.shape[1], dtype: ScalarType.Int64);
        using var scope = NewDisposeScope();
        Tensor neighbours = matrix.narrow(0, 1, rows - 1).mul(matrix.narrow(0, 0, rows - 1));
        return neighbours.lt(0).sum(dim: 0).MoveToOuterDisposeScope();
    }

    /// <summary>The ±1 Hadamard matrix of a supported order.</summary>
    public static Tensor PlusMinusOne(int order)
    {
        if (!IsSupportedOrder(order))
            throw new ArgumentOutOfRangeException(nameof(order), order, "Hadamard order must be 2^k, 12·2^k or 20·2^k");
        if (BitOperations.IsPow2(order)) return Sylvester(order);
        using var scope = NewDisposeScope();
        int baseOrder = IsPow2Multiple(order, 12) ? 12 : 20;
        Tensor paley = Paley(baseOrder == 12 ? PaleyPrime12 : PaleyPrime20);
        return kron(Sylvester(order / baseOrder), paley).MoveToOuterDisposeScope();
    }

    private static bool IsPow2Multiple(int order, int baseOrder) =>
        order % baseOrder == 0 && BitOperations.IsPow2(order / baseOrder);

    /// <summary>Sylvester's construction: H_1 = [1], H_2k = [[H, H], [H, −H]]; entry (i, j) is (−1)^popcount(i AND j).</summary>
    private static Tensor Sylvester(int order)
    {
        using var scope = NewDisposeScope();
        Tensor h = ones(1, 1, dtype: ScalarType.Float64);
        using Tensor core = tensor(new double[] { 1, 1, 1, -1 }, new long[] { 2, 2 }, ScalarType.Float64);
        for (int size = 1; size < order; size *= 2) h = kron(h, core);
        return h.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Paley's type-I construction for a prime q ≡ 3 (mod 4): with the Jacobsthal matrix Q[i, j] = χ(j − i) (χ the
    /// quadratic character of GF(q)), S = [[0, 1ᵀ], [−1, Q]] is skew-symmetric with S·Sᵀ = q·I, so H = I + S is a
    /// Hadamard matrix of order q + 1.
    /// </summary>
    private static Tensor Paley(int prime)
    {
        using var scope = NewDisposeScope();
        Tensor character = QuadraticCharacter(prime);
        Tensor index = arange(prime, dtype: ScalarType.Int64);
        Tensor difference = index.unsqueeze(0).sub(index.unsqueeze(1)).remainder(prime); // [i, j] = (j − i) mod q
        Tensor jacobsthal = character.index_select(0, difference.flatten()).reshape(prime, prime);

        Tensor topRow = cat(new[] { zeros(1, 1, dtype: ScalarType.Float64), ones(1, prime, dtype: ScalarType.Float64) }, 1);
        Tensor body = cat(new[] { ones(prime, 1, dtype: ScalarType.Float64).neg(), jacobsthal }, 1);
        Tensor skew = cat(new[] { topRow, body }, 0);
        return eye(prime + 1, dtype: ScalarType.Float64).add(skew).MoveToOuterDisposeScope();
    }

    /// <summary>χ(a) for a = 0..q−1: 0 at zero, +1 on non-zero squares, −1 otherwise.</summary>
    private static Tensor QuadraticCharacter(int prime)
    {
        // A constant table of at most 19 entries, built once per matrix; not tensor data.
        var values = new double[prime];
        Array.Fill(values, -1.0);
        values[0] = 0.0;
        for (long a = 1; a < prime; a++) values[a * a % prime] = 1.0;
        return tensor(values, ScalarType.Float64);
    }
}
