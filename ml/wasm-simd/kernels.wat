;; Strata's SIMD loops over tfjs's wasm heap. The module imports the wasm
;; backend's own memory, so pointers are the byte offsets of tensors there;
;; it has no memory, stack or data of its own. `ml/wasm-simd/build.sh`
;; assembles it (wat2wasm, from Debian's wabt) into kernels-wasm.ts, once
;; with a plain and once with a shared memory import (the threaded build).

(module
  (import "env" "memory" (memory 1 MEMORY_LIMITS))

  ;; Adam, as tf.train.adam, fused: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
  ;; out = w - k1 m / (sqrt(k2 v) + eps), with the bias corrections folded
  ;; into k1 = lr / (1 - b1^t) and k2 = 1 / (1 - b2^t).
  (func (export "adam")
    (param $w i32) (param $g i32) (param $m i32) (param $v i32) (param $out i32) (param $n i32)
    (param $k1 f32) (param $k2 f32) (param $b1 f32) (param $b2 f32) (param $eps f32)
    (local $i i32) (local $end4 i32)
    (local $gv v128) (local $mv v128) (local $vv v128)
    (local $B1 v128) (local $B2 v128) (local $OB1 v128) (local $OB2 v128) (local $K1 v128) (local $K2 v128) (local $EPS v128)
    (local $gs f32) (local $ms f32) (local $vs f32)
    (local.set $B1 (f32x4.splat (local.get $b1)))
    (local.set $B2 (f32x4.splat (local.get $b2)))
    (local.set $OB1 (f32x4.splat (f32.sub (f32.const 1) (local.get $b1))))
    (local.set $OB2 (f32x4.splat (f32.sub (f32.const 1) (local.get $b2))))
    (local.set $K1 (f32x4.splat (local.get $k1)))
    (local.set $K2 (f32x4.splat (local.get $k2)))
    (local.set $EPS (f32x4.splat (local.get $eps)))
    (local.set $end4 (i32.and (local.get $n) (i32.const -4)))
    (block $done4
      (loop $loop4
        (br_if $done4 (i32.ge_u (local.get $i) (local.get $end4)))
        (local.set $gv (v128.load (i32.add (local.get $g) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $mv (f32x4.add
          (f32x4.mul (local.get $B1) (v128.load (i32.add (local.get $m) (i32.shl (local.get $i) (i32.const 2)))))
          (f32x4.mul (local.get $OB1) (local.get $gv))))
        (local.set $vv (f32x4.add
          (f32x4.mul (local.get $B2) (v128.load (i32.add (local.get $v) (i32.shl (local.get $i) (i32.const 2)))))
          (f32x4.mul (local.get $OB2) (f32x4.mul (local.get $gv) (local.get $gv)))))
        (v128.store (i32.add (local.get $m) (i32.shl (local.get $i) (i32.const 2))) (local.get $mv))
        (v128.store (i32.add (local.get $v) (i32.shl (local.get $i) (i32.const 2))) (local.get $vv))
        (v128.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2)))
          (f32x4.sub
            (v128.load (i32.add (local.get $w) (i32.shl (local.get $i) (i32.const 2))))
            (f32x4.div
              (f32x4.mul (local.get $K1) (local.get $mv))
              (f32x4.add (f32x4.sqrt (f32x4.mul (local.get $vv) (local.get $K2))) (local.get $EPS)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $loop4)))
    (block $done
      (loop $loop
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $gs (f32.load (i32.add (local.get $g) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $ms (f32.add
          (f32.mul (local.get $b1) (f32.load (i32.add (local.get $m) (i32.shl (local.get $i) (i32.const 2)))))
          (f32.mul (f32.sub (f32.const 1) (local.get $b1)) (local.get $gs))))
        (local.set $vs (f32.add
          (f32.mul (local.get $b2) (f32.load (i32.add (local.get $v) (i32.shl (local.get $i) (i32.const 2)))))
          (f32.mul (f32.sub (f32.const 1) (local.get $b2)) (f32.mul (local.get $gs) (local.get $gs)))))
        (f32.store (i32.add (local.get $m) (i32.shl (local.get $i) (i32.const 2))) (local.get $ms))
        (f32.store (i32.add (local.get $v) (i32.shl (local.get $i) (i32.const 2))) (local.get $vs))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2)))
          (f32.sub
            (f32.load (i32.add (local.get $w) (i32.shl (local.get $i) (i32.const 2))))
            (f32.div
              (f32.mul (local.get $k1) (local.get $ms))
              (f32.add (f32.sqrt (f32.mul (local.get $vs) (local.get $k2))) (local.get $eps)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $loop))))

  ;; g[i] = 0 where y[i] <= 0: the ReLU's gradient, in place.
  (func (export "reluGrad") (param $g i32) (param $y i32) (param $n i32)
    (local $i i32) (local $end4 i32) (local $p i32)
    (local.set $end4 (i32.and (local.get $n) (i32.const -4)))
    (block $done4
      (loop $loop4
        (br_if $done4 (i32.ge_u (local.get $i) (local.get $end4)))
        (local.set $p (i32.shl (local.get $i) (i32.const 2)))
        (v128.store (i32.add (local.get $g) (local.get $p))
          (v128.and
            (v128.load (i32.add (local.get $g) (local.get $p)))
            (f32x4.gt (v128.load (i32.add (local.get $y) (local.get $p))) (v128.const f32x4 0 0 0 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $loop4)))
    (block $done
      (loop $loop
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $p (i32.shl (local.get $i) (i32.const 2)))
        (if (i32.eqz (f32.gt (f32.load (i32.add (local.get $y) (local.get $p))) (f32.const 0)))
          (then (f32.store (i32.add (local.get $g) (local.get $p)) (f32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $loop))))

  ;; The gradient of a 2x2, stride-2, 'valid' max pool over [N, H, W, C]
  ;; (C a multiple of 4), fused with the ReLU before it (when $relu: no
  ;; gradient where the window's maximum is 0) and that layer's bias
  ;; gradient (when $db != 0: per-channel sums, accumulated). Each output
  ;; gradient goes to the first maximal input of its window, as in tfjs.
  ;; $dx must be zero-filled by the caller (odd H or W leave rows unwritten).
  (func (export "maxPool2x2Grad")
    (param $x i32) (param $dy i32) (param $dx i32) (param $db i32)
    (param $n i32) (param $h i32) (param $w i32) (param $c i32) (param $relu i32)
    (local $oh i32) (local $ow i32) (local $b i32) (local $oy i32) (local $ox i32) (local $ch i32)
    (local $rowStride i32) (local $p00 i32) (local $gOff i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128) (local $mx v128)
    (local $m0 v128) (local $m1 v128) (local $m2 v128) (local $m3 v128) (local $taken v128) (local $g v128)
    (local.set $oh (i32.shr_u (local.get $h) (i32.const 1)))
    (local.set $ow (i32.shr_u (local.get $w) (i32.const 1)))
    (local.set $rowStride (i32.shl (i32.mul (local.get $w) (local.get $c)) (i32.const 2)))
    (local.set $gOff (local.get $dy))
    (block $doneB (loop $loopB
      (br_if $doneB (i32.ge_u (local.get $b) (local.get $n)))
      (local.set $oy (i32.const 0))
      (block $doneY (loop $loopY
        (br_if $doneY (i32.ge_u (local.get $oy) (local.get $oh)))
        (local.set $ox (i32.const 0))
        (block $doneX (loop $loopX
          (br_if $doneX (i32.ge_u (local.get $ox) (local.get $ow)))
          ;; byte offset of window element (2 oy, 2 ox) of image b, channel 0
          (local.set $p00 (i32.shl
            (i32.mul
              (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (i32.shl (local.get $oy) (i32.const 1))) (local.get $w))
                (i32.shl (local.get $ox) (i32.const 1)))
              (local.get $c))
            (i32.const 2)))
          (local.set $ch (i32.const 0))
          (block $doneC (loop $loopC
            (br_if $doneC (i32.ge_u (local.get $ch) (local.get $c)))
            (local.set $v0 (v128.load (i32.add (local.get $x) (local.get $p00))))
            (local.set $v1 (v128.load (i32.add (local.get $x) (i32.add (local.get $p00) (i32.shl (local.get $c) (i32.const 2))))))
            (local.set $v2 (v128.load (i32.add (local.get $x) (i32.add (local.get $p00) (local.get $rowStride)))))
            (local.set $v3 (v128.load (i32.add (local.get $x) (i32.add (i32.add (local.get $p00) (local.get $rowStride)) (i32.shl (local.get $c) (i32.const 2))))))
            (local.set $mx (f32x4.max (f32x4.max (local.get $v0) (local.get $v1)) (f32x4.max (local.get $v2) (local.get $v3))))
            (local.set $g (v128.load (local.get $gOff)))
            (if (local.get $relu)
              (then (local.set $g (v128.and (local.get $g) (f32x4.gt (local.get $mx) (v128.const f32x4 0 0 0 0))))))
            (local.set $m0 (f32x4.eq (local.get $v0) (local.get $mx)))
            (local.set $m1 (v128.andnot (f32x4.eq (local.get $v1) (local.get $mx)) (local.get $m0)))
            (local.set $taken (v128.or (local.get $m0) (local.get $m1)))
            (local.set $m2 (v128.andnot (f32x4.eq (local.get $v2) (local.get $mx)) (local.get $taken)))
            (local.set $taken (v128.or (local.get $taken) (local.get $m2)))
            (local.set $m3 (v128.not (local.get $taken)))
            (v128.store (i32.add (local.get $dx) (local.get $p00)) (v128.and (local.get $g) (local.get $m0)))
            (v128.store (i32.add (local.get $dx) (i32.add (local.get $p00) (i32.shl (local.get $c) (i32.const 2)))) (v128.and (local.get $g) (local.get $m1)))
            (v128.store (i32.add (local.get $dx) (i32.add (local.get $p00) (local.get $rowStride))) (v128.and (local.get $g) (local.get $m2)))
            (v128.store (i32.add (local.get $dx) (i32.add (i32.add (local.get $p00) (local.get $rowStride)) (i32.shl (local.get $c) (i32.const 2)))) (v128.and (local.get $g) (local.get $m3)))
            (if (local.get $db)
              (then (v128.store (i32.add (local.get $db) (i32.shl (local.get $ch) (i32.const 2)))
                (f32x4.add (v128.load (i32.add (local.get $db) (i32.shl (local.get $ch) (i32.const 2)))) (local.get $g)))))
            (local.set $p00 (i32.add (local.get $p00) (i32.const 16)))
            (local.set $gOff (i32.add (local.get $gOff) (i32.const 16)))
            (local.set $ch (i32.add (local.get $ch) (i32.const 4)))
            (br $loopC)))
          (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
          (br $loopX)))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $loopY)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $loopB))))
  ;; x[r, c] = x[r, c] + bias[r], then max(0, .) when $relu, over a
  ;; [rows, cols] matrix in place ($bias 0: no bias). A dense layer's bias
  ;; and activation in the feature-major layout ([units, batch]).
  (func (export "biasRelu") (param $x i32) (param $bias i32) (param $rows i32) (param $cols i32) (param $relu i32)
    (local $r i32) (local $c i32) (local $end4 i32) (local $p i32) (local $b f32) (local $bv v128) (local $v v128) (local $s f32)
    (local.set $end4 (i32.and (local.get $cols) (i32.const -4)))
    (local.set $p (local.get $x))
    (block $doneR (loop $loopR
      (br_if $doneR (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $b (if (result f32) (local.get $bias)
        (then (f32.load (i32.add (local.get $bias) (i32.shl (local.get $r) (i32.const 2)))))
        (else (f32.const 0))))
      (local.set $bv (f32x4.splat (local.get $b)))
      (local.set $c (i32.const 0))
      (block $done4 (loop $loop4
        (br_if $done4 (i32.ge_u (local.get $c) (local.get $end4)))
        (local.set $v (f32x4.add (v128.load (local.get $p)) (local.get $bv)))
        (if (local.get $relu) (then (local.set $v (f32x4.max (local.get $v) (v128.const f32x4 0 0 0 0)))))
        (v128.store (local.get $p) (local.get $v))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $loop4)))
      (block $done (loop $loop
        (br_if $done (i32.ge_u (local.get $c) (local.get $cols)))
        (local.set $s (f32.add (f32.load (local.get $p)) (local.get $b)))
        (if (local.get $relu) (then (local.set $s (f32.max (local.get $s) (f32.const 0)))))
        (f32.store (local.get $p) (local.get $s))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $loop)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $loopR))))

  ;; out[r] = sum over c of g[r, c], for a [rows, cols] matrix (a bias
  ;; gradient in the feature-major layout).
  (func (export "rowSums") (param $g i32) (param $rows i32) (param $cols i32) (param $out i32)
    (local $r i32) (local $c i32) (local $end4 i32) (local $p i32) (local $acc v128) (local $s f32)
    (local.set $end4 (i32.and (local.get $cols) (i32.const -4)))
    (local.set $p (local.get $g))
    (block $doneR (loop $loopR
      (br_if $doneR (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $c (i32.const 0))
      (block $done4 (loop $loop4
        (br_if $done4 (i32.ge_u (local.get $c) (local.get $end4)))
        (local.set $acc (f32x4.add (local.get $acc) (v128.load (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $loop4)))
      (local.set $s (f32.add
        (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
        (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
      (block $done (loop $loop
        (br_if $done (i32.ge_u (local.get $c) (local.get $cols)))
        (local.set $s (f32.add (local.get $s) (f32.load (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $loop)))
      (f32.store (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2))) (local.get $s))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $loopR))))
  ;; The filter gradient of an NHWC convolution, directly: for each output
  ;; position, each tap's input value times dy's Co channels (4 at a time)
  ;; is added into dw [kh, kw, c, co] (zero-filled by the caller; co a
  ;; multiple of 4). For few input channels, where a GEMM would first pack
  ;; all of dy. $geo points at 12 i32s: n h w c oh ow kh kw co sh sw top,
  ;; then left.
  (func (export "convFilterGrad") (param $x i32) (param $dy i32) (param $dw i32) (param $geo i32)
    (local $n i32) (local $h i32) (local $w i32) (local $c i32) (local $oh i32) (local $ow i32)
    (local $kh i32) (local $kw i32) (local $co i32) (local $sh i32) (local $sw i32) (local $top i32) (local $left i32)
    (local $b i32) (local $y i32) (local $xo i32) (local $i i32) (local $j i32) (local $ci i32) (local $k i32)
    (local $ih i32) (local $iw i32) (local $dyp i32) (local $xp i32) (local $accp i32) (local $cob i32) (local $xs v128)
    (local.set $n (i32.load offset=0 (local.get $geo)))
    (local.set $h (i32.load offset=4 (local.get $geo)))
    (local.set $w (i32.load offset=8 (local.get $geo)))
    (local.set $c (i32.load offset=12 (local.get $geo)))
    (local.set $oh (i32.load offset=16 (local.get $geo)))
    (local.set $ow (i32.load offset=20 (local.get $geo)))
    (local.set $kh (i32.load offset=24 (local.get $geo)))
    (local.set $kw (i32.load offset=28 (local.get $geo)))
    (local.set $co (i32.load offset=32 (local.get $geo)))
    (local.set $sh (i32.load offset=36 (local.get $geo)))
    (local.set $sw (i32.load offset=40 (local.get $geo)))
    (local.set $top (i32.load offset=44 (local.get $geo)))
    (local.set $left (i32.load offset=48 (local.get $geo)))
    (local.set $cob (i32.shl (local.get $co) (i32.const 2)))
    (local.set $dyp (local.get $dy))
    (block $doneB (loop $loopB
      (br_if $doneB (i32.ge_u (local.get $b) (local.get $n)))
      (local.set $y (i32.const 0))
      (block $doneY (loop $loopY
        (br_if $doneY (i32.ge_u (local.get $y) (local.get $oh)))
        (local.set $xo (i32.const 0))
        (block $doneX (loop $loopX
          (br_if $doneX (i32.ge_u (local.get $xo) (local.get $ow)))
          (local.set $i (i32.const 0))
          (block $doneI (loop $loopI
            (br_if $doneI (i32.ge_u (local.get $i) (local.get $kh)))
            (local.set $ih (i32.sub (i32.add (i32.mul (local.get $y) (local.get $sh)) (local.get $i)) (local.get $top)))
            (if (i32.lt_u (local.get $ih) (local.get $h)) (then
              (local.set $j (i32.const 0))
              (block $doneJ (loop $loopJ
                (br_if $doneJ (i32.ge_u (local.get $j) (local.get $kw)))
                (local.set $iw (i32.sub (i32.add (i32.mul (local.get $xo) (local.get $sw)) (local.get $j)) (local.get $left)))
                (if (i32.lt_u (local.get $iw) (local.get $w)) (then
                  (local.set $xp (i32.add (local.get $x) (i32.shl
                    (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (local.get $ih)) (local.get $w)) (local.get $iw)) (local.get $c))
                    (i32.const 2))))
                  (local.set $accp (i32.add (local.get $dw) (i32.mul
                    (i32.mul (i32.add (i32.mul (local.get $i) (local.get $kw)) (local.get $j)) (local.get $c))
                    (local.get $cob))))
                  (local.set $ci (i32.const 0))
                  (block $doneC (loop $loopC
                    (br_if $doneC (i32.ge_u (local.get $ci) (local.get $c)))
                    (local.set $xs (v128.load32_splat (local.get $xp)))
                    (local.set $k (i32.const 0))
                    (block $doneK (loop $loopK
                      (br_if $doneK (i32.ge_u (local.get $k) (local.get $cob)))
                      (v128.store (i32.add (local.get $accp) (local.get $k))
                        (f32x4.add (v128.load (i32.add (local.get $accp) (local.get $k)))
                          (f32x4.mul (local.get $xs) (v128.load (i32.add (local.get $dyp) (local.get $k))))))
                      (local.set $k (i32.add (local.get $k) (i32.const 16)))
                      (br $loopK)))
                    (local.set $xp (i32.add (local.get $xp) (i32.const 4)))
                    (local.set $accp (i32.add (local.get $accp) (local.get $cob)))
                    (local.set $ci (i32.add (local.get $ci) (i32.const 1)))
                    (br $loopC)))))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $loopJ)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $loopI)))
          (local.set $dyp (i32.add (local.get $dyp) (local.get $cob)))
          (local.set $xo (i32.add (local.get $xo) (i32.const 1)))
          (br $loopX)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $loopY)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $loopB))))
  ;; Patches for a stride-1 convolution's filter gradient, transposed:
  ;; rows (kh, kw, ci), columns (n, oh, ow). $xt is the input as
  ;; [c, n, hp, wp], zero-padded around (see padTranspose), so each row's
  ;; run for one (n, oh) is ow contiguous floats: one memory.copy.
  ;; $geo: 10 i32s: n c hp wp oh ow kh kw, then the images to take, b0 and
  ;; nb (columns for images b0 .. b0 + nb - 1 only).
  (func (export "im2rowsT") (param $xt i32) (param $out i32) (param $geo i32)
    (local $n i32) (local $c i32) (local $hp i32) (local $wp i32) (local $oh i32) (local $ow i32) (local $kh i32) (local $kw i32)
    (local $i i32) (local $j i32) (local $ci i32) (local $b i32) (local $y i32) (local $dst i32) (local $src i32) (local $run i32)
    (local $b0 i32) (local $b1 i32)
    (local.set $n (i32.load offset=0 (local.get $geo)))
    (local.set $b0 (i32.load offset=32 (local.get $geo)))
    (local.set $b1 (i32.add (local.get $b0) (i32.load offset=36 (local.get $geo))))
    (local.set $c (i32.load offset=4 (local.get $geo)))
    (local.set $hp (i32.load offset=8 (local.get $geo)))
    (local.set $wp (i32.load offset=12 (local.get $geo)))
    (local.set $oh (i32.load offset=16 (local.get $geo)))
    (local.set $ow (i32.load offset=20 (local.get $geo)))
    (local.set $kh (i32.load offset=24 (local.get $geo)))
    (local.set $kw (i32.load offset=28 (local.get $geo)))
    (local.set $run (i32.shl (local.get $ow) (i32.const 2)))
    (local.set $dst (local.get $out))
    (block $doneI (loop $loopI
      (br_if $doneI (i32.ge_u (local.get $i) (local.get $kh)))
      (local.set $j (i32.const 0))
      (block $doneJ (loop $loopJ
        (br_if $doneJ (i32.ge_u (local.get $j) (local.get $kw)))
        (local.set $ci (i32.const 0))
        (block $doneC (loop $loopC
          (br_if $doneC (i32.ge_u (local.get $ci) (local.get $c)))
          (local.set $b (local.get $b0))
          (block $doneB (loop $loopB
            (br_if $doneB (i32.ge_u (local.get $b) (local.get $b1)))
            (local.set $y (i32.const 0))
            (block $doneY (loop $loopY
              (br_if $doneY (i32.ge_u (local.get $y) (local.get $oh)))
              (local.set $src (i32.add (local.get $xt) (i32.shl
                (i32.add
                  (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $ci) (local.get $n)) (local.get $b)) (local.get $hp))
                    (i32.add (local.get $y) (local.get $i))) (local.get $wp))
                  (local.get $j))
                (i32.const 2))))
              (memory.copy (local.get $dst) (local.get $src) (local.get $run))
              (local.set $dst (i32.add (local.get $dst) (local.get $run)))
              (local.set $y (i32.add (local.get $y) (i32.const 1)))
              (br $loopY)))
            (local.set $b (i32.add (local.get $b) (i32.const 1)))
            (br $loopB)))
          (local.set $ci (i32.add (local.get $ci) (i32.const 1)))
          (br $loopC)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $loopJ)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $loopI))))

  ;; out [c, n, h + top + bottom, w + left + right] = x [n, h, w, c] at offset
  ;; (top, left); the border is left as it is (the caller zero-fills $out).
  ;; $geo: 6 i32s: n h w c top left; then hp wp.
  (func (export "padTranspose") (param $x i32) (param $out i32) (param $geo i32)
    (local $n i32) (local $h i32) (local $w i32) (local $c i32) (local $top i32) (local $left i32) (local $hp i32) (local $wp i32)
    (local $b i32) (local $y i32) (local $xx i32) (local $ci i32) (local $src i32) (local $plane i32) (local $base i32)
    (local.set $n (i32.load offset=0 (local.get $geo)))
    (local.set $h (i32.load offset=4 (local.get $geo)))
    (local.set $w (i32.load offset=8 (local.get $geo)))
    (local.set $c (i32.load offset=12 (local.get $geo)))
    (local.set $top (i32.load offset=16 (local.get $geo)))
    (local.set $left (i32.load offset=20 (local.get $geo)))
    (local.set $hp (i32.load offset=24 (local.get $geo)))
    (local.set $wp (i32.load offset=28 (local.get $geo)))
    ;; bytes between channel planes of out
    (local.set $plane (i32.shl (i32.mul (i32.mul (local.get $n) (local.get $hp)) (local.get $wp)) (i32.const 2)))
    (local.set $src (local.get $x))
    (block $doneB (loop $loopB
      (br_if $doneB (i32.ge_u (local.get $b) (local.get $n)))
      (local.set $y (i32.const 0))
      (block $doneY (loop $loopY
        (br_if $doneY (i32.ge_u (local.get $y) (local.get $h)))
        (local.set $xx (i32.const 0))
        (block $doneX (loop $loopX
          (br_if $doneX (i32.ge_u (local.get $xx) (local.get $w)))
          (local.set $base (i32.add (local.get $out) (i32.shl
            (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $hp)) (i32.add (local.get $y) (local.get $top))) (local.get $wp))
              (i32.add (local.get $xx) (local.get $left)))
            (i32.const 2))))
          (local.set $ci (i32.const 0))
          (block $doneC (loop $loopC
            (br_if $doneC (i32.ge_u (local.get $ci) (local.get $c)))
            (f32.store (local.get $base) (f32.load (local.get $src)))
            (local.set $base (i32.add (local.get $base) (local.get $plane)))
            (local.set $src (i32.add (local.get $src) (i32.const 4)))
            (local.set $ci (i32.add (local.get $ci) (i32.const 1)))
            (br $loopC)))
          (local.set $xx (i32.add (local.get $xx) (i32.const 1)))
          (br $loopX)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $loopY)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $loopB))))
)
