use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use permetrix::cli::{BackupArgs, Cli, Command, RestoreArgs, ServeArgs};
use permetrix::server::Application;
use permetrix::server::telemetry::LogFormat;
use secrecy::ExposeSecret;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Declared before `result` so that it is dropped (and the log flushed) after the
    // error below is logged.
    let _log;
    let result = match cli.command {
        Command::Run(args) => {
            let code = actix_rt::System::new().block_on(permetrix_client::run::run(args));
            return ExitCode::from(code);
        }
        Command::Serve(args) => {
            permetrix::ops::startup_checks::private_umask();
            _log = permetrix::server::telemetry::init(args.log_format);
            permetrix::server::panic_hook::install_panic_hook();
            actix_rt::System::new().block_on(serve(args))
        }
        Command::Backup(args) => {
            permetrix::ops::startup_checks::private_umask();
            _log = permetrix::server::telemetry::init(LogFormat::Text);
            backup(&args)
        }
        Command::Restore(args) => {
            permetrix::ops::startup_checks::private_umask();
            _log = permetrix::server::telemetry::init(LogFormat::Text);
            restore(&args)
        }
        Command::Load(args) => permetrix_client::load::main(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config();
    let app = Application::build(config.clone()).await?;
    let mut out = std::io::stdout().lock();
    if let Some(token) = &app.startup.generated_admin_token {
        writeln!(
            out,
            "\nOperator token (shown once; set PERMETRIX_ADMIN_TOKEN to choose your own):\n  {}\n",
            token.expose_secret()
        )?;
    }
    if let Some(creds) = &app.startup.demo {
        writeln!(out, "{}", creds.banner(app.addr()))?;
    } else if app.startup.demo_already_present {
        writeln!(
            out,
            "Demo data is already present; its credentials were printed when it was first seeded."
        )?;
    }
    out.flush()?;
    drop(out);
    app.run_until_stopped().await
}

fn backup(args: &BackupArgs) -> anyhow::Result<()> {
    let (stats, source) = permetrix::ops::backup::backup(&args.data_dir, &args.out)?;
    println!(
        "backup of {source} in {} written to {}: {} entries, {} file(s), {} bytes",
        args.data_dir.display(),
        args.out.display(),
        stats.entries,
        stats.files,
        stats.bytes
    );
    Ok(())
}

fn restore(args: &RestoreArgs) -> anyhow::Result<()> {
    let stats = permetrix::ops::backup::restore(&args.from, &args.data_dir)?;
    println!(
        "restored {} into {}: {} entries, {} file(s)",
        args.from.display(),
        args.data_dir.display(),
        stats.entries,
        stats.files
    );
    if stats.files == 0 {
        println!(
            "warning: the backup holds no server.key; copy the original one into {} before \
             starting the server, or API keys and vendor signing secrets will not work",
            args.data_dir.display()
        );
    }
    Ok(())
}
