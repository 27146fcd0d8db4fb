package org.dbos.kernel.files;

/** statfs: block size, total/free blocks, inode counts and the longest name. */
public record StatFs(long blockSize, long blocks, long freeBlocks, long files, long freeFiles, long nameMax) {}
