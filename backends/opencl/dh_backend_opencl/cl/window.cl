// Window geometry of Conv and pooling (geometry.py): g holds, three values each (axes
// d, h, w), the input sizes, kernel, output sizes, strides, dilations, begin pads and end pads.
#define SIZE(a) g[(a)]
#define KERNEL(a) g[3 + (a)]
#define OUT(a) g[6 + (a)]
#define STRIDE(a) g[9 + (a)]
#define DILATION(a) g[12 + (a)]
#define BEGIN(a) g[15 + (a)]
#define END(a) g[18 + (a)]

// The (d, h, w) coordinates of flat output position p.
inline int3 out_position(__global const int* g, long p)
{
    int3 o;
    o.z = (int)(p % OUT(2));
    p /= OUT(2);
    o.y = (int)(p % OUT(1));
    o.x = (int)(p / OUT(1));
    return o;
}

// The input coordinates that kernel tap k reads for output coordinates o.
inline int3 tap_position(__global const int* g, int3 o, int3 k)
{
    return (int3)(o.x * STRIDE(0) - BEGIN(0) + k.x * DILATION(0),
                  o.y * STRIDE(1) - BEGIN(1) + k.y * DILATION(1),
                  o.z * STRIDE(2) - BEGIN(2) + k.z * DILATION(2));
}

inline int inside(__global const int* g, int3 i)
{
    return 0 <= i.x && i.x < SIZE(0) && 0 <= i.y && i.y < SIZE(1) && 0 <= i.z && i.z < SIZE(2);
}

// Row-major offset of input coordinates i inside one (image, channel) plane.
inline long plane_offset(__global const int* g, int3 i)
{
    return ((long)i.x * SIZE(1) + i.y) * SIZE(2) + i.z;
}

// Runs BODY for every kernel tap (kd, kh, kw) with i, the input coordinates the tap
// reads for output coordinates o (inside the input or in the pads: see inside()).
#define FOR_EACH_TAP(g, o, BODY)                                                        \
    for (int kd = 0; kd < KERNEL(0); ++kd)                                              \
        for (int kh = 0; kh < KERNEL(1); ++kh)                                          \
            for (int kw = 0; kw < KERNEL(2); ++kw) {                                    \
                const int3 i = tap_position(g, o, (int3)(kd, kh, kw));                  \
                BODY                                                                    \
            }
