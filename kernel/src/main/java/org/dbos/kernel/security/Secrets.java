package org.dbos.kernel.security;

import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;

/** Generated secrets and salted password hashes (PBKDF2-HMAC-SHA256, from the JDK). */
public final class Secrets {
  private static final SecureRandom random = new SecureRandom();
  private static final int ITERATIONS = 100_000;

  private Secrets() {}

  /** 32 random bytes, URL-safe base64: a password nobody chose. */
  public static String generate() {
    byte[] b = new byte[32];
    random.nextBytes(b);
    return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
  }

  /** {@code pbkdf2-sha256$iterations$salt$hash}. */
  public static String hash(String secret) {
    byte[] salt = new byte[16];
    random.nextBytes(salt);
    return "pbkdf2-sha256$" + ITERATIONS + "$" + b64(salt) + "$" + b64(derive(secret, salt, ITERATIONS));
  }

  /** Constant-time check of {@code secret} against a stored {@link #hash}. */
  public static boolean verify(String secret, String stored) {
    if (secret == null || stored == null) {
      return false;
    }
    String[] p = stored.split("\\$");
    if (p.length != 4 || !p[0].equals("pbkdf2-sha256")) {
      return false;
    }
    byte[] salt = Base64.getDecoder().decode(p[2]);
    byte[] expected = Base64.getDecoder().decode(p[3]);
    return MessageDigest.isEqual(expected, derive(secret, salt, Integer.parseInt(p[1])));
  }

  private static byte[] derive(String secret, byte[] salt, int iterations) {
    try {
      var spec = new PBEKeySpec(secret.toCharArray(), salt, iterations, 256);
      return SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256").generateSecret(spec).getEncoded();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String b64(byte[] b) {
    return Base64.getEncoder().encodeToString(b);
  }
}
