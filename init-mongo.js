// init-mongo.js — the database's three technical accounts, least privilege:
//
//   admin   dbAdmin + userAdmin on the database (maintenance, user management; no data access)
//   writer  readWrite                            (hcctl migrate)
//   reader  read                                 (hcctl verify, reporting)
//
// Run by the official mongo image at a new server's first start (mounted into
// /docker-entrypoint-initdb.d; see docker-compose.yml), or by hand against a running server:
//
//   MONGO_WRITER_PASSWORD=… MONGO_READER_PASSWORD=… MONGO_ADMIN_PASSWORD=… \
//     mongosh "mongodb://root:…@host:27017/?authSource=admin" --file init-mongo.js
//
// Settings (environment): MONGO_DATABASE (or MONGO_INITDB_DATABASE; default healthcare),
// MONGO_ADMIN_USER / MONGO_WRITER_USER / MONGO_READER_USER (default admin / writer / reader),
// MONGO_ADMIN_PASSWORD / MONGO_WRITER_PASSWORD / MONGO_READER_PASSWORD (required).
//
// Idempotent: an existing account gets its password and roles set again, so running it twice is
// not an error. It refuses to run — before creating anything — when a password is missing,
// empty, a well-known default, holds control or invisible characters (bidi controls, fillers,
// tag characters, …) or a combining mark with no letter before it, or is shorter than 12
// characters as they are seen (a letter with its accents is one; repeated or surrounding spaces
// do not count). Passwords are never printed, even when the server refuses one.
// On a server that cannot store roles (FerretDB 1.x) the accounts are created without roles and
// the script says so loudly: that server enforces no roles anyway.

(function () {
  const env = (typeof process !== 'undefined' && process.env) || {};
  const dbName = env.MONGO_DATABASE || env.MONGO_INITDB_DATABASE || 'healthcare';
  const refused = ['password', 'changeme', 'example', 'secret', 'admin', 'mongo', '123456789012', 'password1234'];
  const accounts = [
    { user: env.MONGO_ADMIN_USER || 'admin', variable: 'MONGO_ADMIN_PASSWORD', roles: ['dbAdmin', 'userAdmin'] },
    { user: env.MONGO_WRITER_USER || 'writer', variable: 'MONGO_WRITER_PASSWORD', roles: ['readWrite'] },
    { user: env.MONGO_READER_USER || 'reader', variable: 'MONGO_READER_PASSWORD', roles: ['read'] },
  ];

  // The same rule as hcctl (src/security/passwords.rs): characters as they are seen (grapheme
  // clusters, not UTF-16 units or code points); surrounding whitespace left out and inner runs
  // counted once; no controls, format characters (bidi controls, zero-width and tag
  // characters, …), default-ignorable characters other than marks (the Hangul fillers) or blank
  // braille; no combining mark with nothing before it (at the start or after a space).
  const words = (pw) => pw.split(/\s+/).filter((w) => w.length > 0);
  const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
  const effectiveLength = (pw) => {
    const ws = words(pw);
    return ws.reduce((n, w) => n + [...graphemes.segment(w)].length, 0) + Math.max(ws.length - 1, 0);
  };
  const invisible = (pw) => [...pw].some((c) =>
    /[\p{Cc}\p{Cf}\u2800]/u.test(c) || (/\p{Default_Ignorable_Code_Point}/u.test(c) && !/\p{Mn}/u.test(c)));
  const loneMark = (pw) => words(pw).some((w) => /^\p{M}/u.test(w));

  // Check everything before changing anything.
  const problems = [];
  for (const a of accounts) {
    const pw = env[a.variable];
    if (!pw) {
      problems.push(`${a.variable} is not set or empty (password of account ${a.user})`);
    } else if (refused.includes(pw.toLowerCase())) {
      problems.push(`${a.variable} is a well-known default (account ${a.user}); generate one, e.g. openssl rand -hex 24`);
    } else if (invisible(pw)) {
      problems.push(`${a.variable} contains control or invisible characters (account ${a.user}); generate one, e.g. openssl rand -hex 24`);
    } else if (loneMark(pw)) {
      problems.push(`${a.variable} has a combining mark with no letter before it (account ${a.user}); generate one, e.g. openssl rand -hex 24`);
    } else if (effectiveLength(pw) < 12) {
      problems.push(`${a.variable} is shorter than 12 characters as they are seen, not counting repeated or surrounding spaces (account ${a.user}); generate one, e.g. openssl rand -hex 24`);
    }
  }
  if (problems.length > 0) {
    throw new Error('init-mongo.js: refusing to create accounts:\n  ' + problems.join('\n  '));
  }

  const build = db.adminCommand({ buildInfo: 1 });
  const rolesSupported = !build.ferretdbVersion;
  if (!rolesSupported) {
    print(`init-mongo.js: WARNING: FerretDB ${build.ferretdbVersion} cannot store roles: ` +
      'accounts are created WITHOUT roles (not least privilege on this server)');
  }
  const target = db.getSiblingDB(dbName);
  for (const a of accounts) {
    const roles = rolesSupported ? a.roles.map((role) => ({ role, db: dbName })) : [];
    const shown = rolesSupported ? `roles: ${a.roles.join(', ')}` : 'no roles: unsupported by this server';
    const pwd = env[a.variable];
    const exists = Boolean(target.getUser(a.user));
    try {
      if (exists) {
        target.updateUser(a.user, { pwd, roles });
      } else {
        target.createUser({ user: a.user, pwd, roles });
      }
    } catch (e) {
      // The server's message may quote the password (e.g. "cannot SASLprep password '…'"):
      // name the account and the error code only. Rerunning is safe (accounts are upserted).
      throw new Error(`init-mongo.js: ${exists ? 'updating' : 'creating'} account ${a.user}@${dbName} ` +
        `failed: ${e.codeName || e.code || 'server error'} (fix ${a.variable} and run the script again)`);
    }
    print(`init-mongo.js: account ${a.user}@${dbName} ${exists ? 'updated' : 'created'} (${shown})`);
  }
})();
