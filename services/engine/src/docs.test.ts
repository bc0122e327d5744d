import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DOCS_DIR, expectedDocs, readDocs } from './docs-generate.ts';

const REPO = fileURLToPath(new URL('../', DOCS_DIR));

describe('docs/', () => {
  test('the committed docs are what the generator writes (run: npm run docs)', () => {
    const current = readDocs();
    for (const [file, content] of expectedDocs(current)) {
      assert.equal(current.get(file), content, `docs/${file} is stale: run npm run docs`);
    }
  });

  test('every relative link points at a file inside the repository', () => {
    for (const [file, content] of readDocs()) {
      for (const [, target] of content.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (!target || /^[a-z]+:/.test(target)) continue;
        const path = fileURLToPath(new URL(target, new URL(file, DOCS_DIR)));
        assert.ok(path.startsWith(REPO), `docs/${file} links outside the repository: ${target}`);
        assert.ok(existsSync(path), `docs/${file} links to a missing file: ${target}`);
      }
    }
  });
});

describe('expectedDocs', () => {
  const renderers = new Map([
    ['a', () => 'A'],
    ['b', () => 'B'],
  ]);
  const block = (name: string, body = '') =>
    `<!-- generated:${name}:start -->\n${body}<!-- generated:${name}:end -->`;

  test('replaces only what lies between the markers', () => {
    const out = expectedDocs(
      new Map([['x.md', `intro\n${block('a', 'old\n')}\nmiddle\n${block('b')}\nend\n`]]),
      renderers,
    );
    assert.equal(out.get('x.md'), `intro\n${block('a', 'A\n')}\nmiddle\n${block('b', 'B\n')}\nend\n`);
  });

  test('refuses a section it does not know, a missing end, a section twice, or one with no place', () => {
    const run = (text: string) => () => expectedDocs(new Map([['x.md', text]]), renderers);
    assert.throws(run(`${block('a')}${block('b')}${block('c')}`), /unknown generated section "c"/);
    assert.throws(run(`${block('a')}<!-- generated:b:start -->\n`), /no matching end/);
    assert.throws(run(`${block('a')}${block('b')}${block('a')}`), /already appears/);
    assert.throws(run(block('a')), /no place in docs\/ for generated sections: b/);
  });
});
